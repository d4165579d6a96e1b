"""Slices of an employee's state (pure): encoding round trips, widening, replays, merging = the reference."""

from __future__ import annotations

import zlib

import hiredis
import pytest

from services.engagement import partial
from services.engagement.batch import Record, plan
from services.engagement.config import load_scoring
from services.engagement.reference import Reference
from services.engagement.scoring import COUNTERS, Op, figures
from tests.unit.engagement.builders import DAY, mixed_history

CFG = load_scoring()
RULES = partial.rules(CFG)
END = 20_100 * DAY
PARTITIONS = 4


def slices(events: list, batch: int) -> dict[tuple[str, int], partial.Slice]:
    """Applies the events like a worker: per partition in log order, `batch` records at a time, through
    an encode/decode round trip after every batch (as if each batch came back from Redis)."""
    offsets = dict.fromkeys(range(PARTITIONS), 0)
    records = []
    for env in events:
        p = zlib.crc32(env.employee_id.encode()) % PARTITIONS
        records.append(Record(p, offsets[p], env.employee_id.encode(), env.SerializeToString(), END * 1000))
        offsets[p] += 1
    out: dict[tuple[str, int], partial.Slice] = {}
    for start in range(0, len(records), batch):
        work = plan(records[start : start + batch], END * 1000 + 1, 3_600_000)
        for employee, by_partition in work.ops.items():
            for source, entries in by_partition.items():
                part = out.get((employee, source), partial.Slice())
                part.apply(entries, RULES)
                part.prune(RULES)
                out[(employee, source)] = partial.decode(part.encode())
    return out


def merged(parts: dict[tuple[str, int], partial.Slice], as_of: int) -> dict:
    employees = sorted({e for e, _ in parts})
    out = {}
    for employee in employees:
        state = partial.merge([p for (e, _), p in parts.items() if e == employee], False)
        out[employee] = figures(state, as_of, CFG)
    return out


def test_merged_slices_give_the_reference_figures_whatever_the_batch_size() -> None:
    events = list(mixed_history(employees=25, days=140, per_day=30, end_seconds=END, seed=3))
    reference = Reference(CFG)
    reference.feed(events)
    as_of = END // DAY
    expected = reference.figures(as_of)
    assert merged(slices(events, 7), as_of) == expected
    assert merged(slices(events, 100_000), as_of) == expected


def test_replaying_offsets_at_or_below_the_mark_changes_nothing() -> None:
    events = list(mixed_history(employees=10, days=20, per_day=20, end_seconds=END, seed=9))
    parts = slices(events, 50)
    before = {k: p.encode() for k, p in parts.items()}
    records = [Record(0, i, e.employee_id.encode(), e.SerializeToString(), END * 1000) for i, e in enumerate(events)]
    work = plan(records, END * 1000 + 1, 3_600_000)
    for employee, by_partition in work.ops.items():
        part = parts.get((employee, 0))
        if part is None:
            continue
        mark = part.mark
        applied, duplicates, _ = part.apply([(o, op) for o, op in by_partition[0] if o <= mark], RULES)
        assert applied == 0
        assert duplicates == sum(1 for o, _ in by_partition[0] if o <= mark)
    assert {k: p.encode() for k, p in parts.items()} == before


def test_tables_widen_instead_of_overflowing_and_round_trip() -> None:
    part = partial.Slice()
    giver = str(0x7FFF_FFFF)
    ops = [Op("d", 0, "1", "Sales", "Zoë Müller"), Op("f", 20_000, "5", "0.75")]
    ops += [Op("r", 20_000, giver, "1") for _ in range(300)]  # more than a byte holds
    ops.append(Op("r", 30_000, giver, "0"))  # a day key beyond 16 bits, a giver value beyond 16 bits
    assert part.apply(list(enumerate(ops, start=1)), RULES) == (len(ops), 0, 0)
    copy = partial.decode(part.encode())
    assert copy.encode() == part.encode()
    assert (copy.mark, copy.count, copy.top, copy.department, copy.name) == (303, 303, 30_000, "Sales", "Zoë Müller")
    received = COUNTERS.index("received")
    state = partial.merge([copy], False)
    assert state.days[20_000][received] == 300
    assert state.days[30_000][received] == 1
    assert state.givers == {0x7FFF_FFFF: (30_000, False)}
    assert state.completeness == 0.75
    assert copy.encode()[:8] == (303).to_bytes(8, "big")  # the mark leads, big-endian (docs/engagement.md)


def test_long_tables_find_every_entry_before_and_after_they_widen() -> None:
    part = partial.Slice()
    ops = [Op("r", 20_000, str(who), "0") for who in range(1, 41)]  # 40 givers: scans cross blocks of eight
    ops += [Op("r", 40_000, str(1 << 20), "1")]  # a value beyond 16 bits: the givers' values widen
    ops += [Op("r", 40_000, str(who), "0") for who in range(1, 41)]  # each found again after widening
    ops += [Op("g", 40_000, "0", str(who)) for who in range(1, 41) for _ in range(3)]  # pairs: 3 > cap of 2
    assert part.apply(list(enumerate(ops, start=1)), RULES) == (len(ops), 0, 0)
    copy = partial.decode(part.encode())
    assert copy.encode() == part.encode()
    state = partial.merge([copy], False)
    assert state.givers == {**{who: (40_000, False) for who in range(1, 41)}, 1 << 20: (40_000, True)}
    assert state.receivers == {who: 40_000 for who in range(1, 41)}
    given = state.days[40_000]
    assert given[COUNTERS.index("received")] == 81 - 40  # 40 on day 20,000
    assert given[0] == 80  # counter 0 credited twice per receiver: the third interaction of a pair is capped


def test_malformed_slices_and_ops_raise_instead_of_guessing() -> None:
    blob = partial.Slice()
    blob.apply([(1, Op("c", 100, "0", "1"))], RULES)
    encoded = blob.encode()
    with pytest.raises(ValueError, match="truncated"):
        partial.decode(encoded[:-1])
    with pytest.raises(ValueError, match="not an integer"):
        partial.Slice().apply([(1, Op("c", 100, "x", "1"))], RULES)
    with pytest.raises(TypeError):
        partial.Slice().apply([(1, "c")], RULES)


def test_pruning_drops_only_what_no_window_can_see() -> None:
    part = partial.Slice()
    days = (800, 899, 900, 950, 1_000)
    part.apply([(i, Op("g", day, "2", str(day))) for i, day in enumerate(days)], RULES)
    part.prune(RULES)
    kept = [d for d in days if d > 1_000 - CFG.keep_days]
    assert sorted(partial.merge([part], False).days) == kept
    assert sorted(partial.merge([part], False).receivers.values()) == kept


def _without_header(command: tuple) -> bytes:
    packed = hiredis.pack_command(command)
    return packed[packed.index(b"\n") + 1 :]


def test_write_updates_owned_slices_with_hset_and_creates_the_others_through_the_script() -> None:
    update_a, update_b = _without_header(("HSET", "{emp:a}:s")), _without_header(("HSET", "{emp:b}:s"))
    create_a = _without_header(("EVALSHA", "f" * 40, 2, "{emp:a}:s", "{emp:a}:gone"))
    create_b = _without_header(("EVALSHA", "f" * 40, 2, "{emp:b}:s", "{emp:b}:gone"))
    fields = [b"t:0:7", b"t:1:3"]
    stored = partial.Slice()
    stored.apply([(4, Op("c", 100, "0", "1"))], RULES)
    slots = (partial.decode(stored.encode()), partial.Slice())
    slots[0].owned = True  # in the worker's own field already; partition 1's slice is new
    groups = {
        0: [(4, Op("c", 100, "0", "1")), (5, Op("d", 100, "7", "Sales", "Ann"))],
        1: [(9, Op("r", 100, "3", "1"))],
    }
    b_slots = (partial.Slice(),)
    b_slots[0].apply([(3, Op("c", 100, "0", "1"))], RULES)
    b_slots[0].owned = True
    items = [("a", groups), ("b", {0: [(3, Op("c", 100, "0", "1")), (6, Op("c", 100, "1", "1"))]})]
    entries = [
        (slots, update_a, create_a, 4, b"$1\r\na\r\n"),
        (b_slots, update_b, create_b, 5, b"$1\r\nb\r\n"),
    ]
    written: list = []
    dirty: dict = {4: [b"old"]}
    moved: list = []
    duplicates, late, packed = partial.write(items, entries, fields, RULES, b"now", written, dirty, moved)
    assert (duplicates, late) == (2, 0)  # a's offset 4 and b's offset 3 were applied before
    assert written == [("a", [0, 1]), ("b", [0])] and moved == [("a", "", "Sales")]
    assert dirty == {4: [b"old", b"now", b"$1\r\na\r\n"], 5: [b"now", b"$1\r\nb\r\n"]}
    create, update = _resp_commands(packed)  # one command per row of `written`, in its order
    assert create[:5] == [b"EVALSHA", b"f" * 40, b"2", b"{emp:a}:s", b"{emp:a}:gone"]  # one new slice: the script
    assert create[5:] == [b"t:0:7", slots[0].encode(), b"t:1:3", slots[1].encode()]
    assert partial.decode(create[6]).department == "Sales"
    assert update == [b"HSET", b"{emp:b}:s", b"t:0:7", b_slots[0].encode()]  # all owned: a plain HSET
    assert slots[1].owned  # written to the worker's own field: the next write is an update


def test_write_of_nothing_applied_sends_nothing() -> None:
    stored = partial.Slice()
    stored.apply([(4, Op("c", 100, "0", "1"))], RULES)
    slots = (stored,)
    entry = (slots, _without_header(("HSET", "{emp:a}:s")), b"", 0, b"$1\r\na\r\n")
    written: list = []
    counts = partial.write(
        [("a", {0: [(4, Op("c", 100, "0", "1"))]})], [entry], [b"t:0:1"], RULES, b"now", written, {}, []
    )
    assert counts == (1, 0, b"") and written == []


def test_write_refuses_mismatched_parts() -> None:
    with pytest.raises(ValueError, match="differ in length"):
        partial.write([("a", {})], [], [b"t:0"], RULES, b"now", [], {}, [])


def _resp_commands(packed: bytes) -> list[list[bytes]]:
    """The bulk strings of each RESP array in `packed` (what Redis would read)."""
    commands, rest = [], packed
    while rest:
        header, rest = rest.split(b"\r\n", 1)
        args = []
        for _ in range(int(header[1:])):
            length, rest = rest.split(b"\r\n", 1)
            size = int(length[1:])
            args.append(rest[:size])
            assert rest[size : size + 2] == b"\r\n"
            rest = rest[size + 2 :]
        commands.append(args)
    return commands
