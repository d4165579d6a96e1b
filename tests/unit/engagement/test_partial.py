"""Slices of an employee's state (pure): encoding round trips, widening, replays, merging = the reference."""

from __future__ import annotations

import zlib

from services.engagement import partial
from services.engagement.batch import Record, plan
from services.engagement.config import load_scoring
from services.engagement.reference import Reference
from services.engagement.scoring import figures
from tests.unit.engagement.builders import DAY, mixed_history

CFG = load_scoring()
RULES = partial.Rules(CFG.keep_days, CFG.conversation.pair_cap_per_day, CFG.conversation.pair_memory_days)
END = 20_100 * DAY
PARTITIONS = 4


def slices(events: list, batch: int) -> dict[tuple[str, int], partial.Partial]:
    """Applies the events like a worker: per partition in log order, `batch` records at a time, through
    an encode/decode round trip after every batch (as if each batch came back from Redis)."""
    offsets = dict.fromkeys(range(PARTITIONS), 0)
    records = []
    for env in events:
        p = zlib.crc32(env.employee_id.encode()) % PARTITIONS
        records.append(Record(p, offsets[p], env.employee_id.encode(), env.SerializeToString(), END * 1000))
        offsets[p] += 1
    out: dict[tuple[str, int], partial.Partial] = {}
    for start in range(0, len(records), batch):
        work = plan(records[start : start + batch], END * 1000 + 1, 3_600_000)
        for employee, by_partition in work.ops.items():
            for source, entries in by_partition.items():
                part = out.get((employee, source), partial.Partial())
                partial.apply(part, entries, RULES)
                partial.prune(part, RULES)
                out[(employee, source)] = partial.decode(partial.encode(part))
    return out


def merged(parts: dict[tuple[str, int], partial.Partial], as_of: int) -> dict:
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
    before = {k: partial.encode(p) for k, p in parts.items()}
    records = [Record(0, i, e.employee_id.encode(), e.SerializeToString(), END * 1000) for i, e in enumerate(events)]
    work = plan(records, END * 1000 + 1, 3_600_000)
    for employee, by_partition in work.ops.items():
        part = parts.get((employee, 0))
        if part is None:
            continue
        mark = part.mark
        outcome = partial.apply(part, [(o, op) for o, op in by_partition[0] if o <= mark], RULES)
        assert outcome.applied == 0
    assert {k: partial.encode(p) for k, p in parts.items()} == before


def test_tables_widen_instead_of_overflowing_and_round_trip() -> None:
    part = partial.Partial(mark=7, count=3, top=20_000, base=19_900)
    for _ in range(300):  # more than a byte holds
        part.days.add(100 << partial.SHIFT | 2)
    part.days.add(5_000 << partial.SHIFT)  # a key beyond 16 bits
    part.givers.raise_to(0x7FFF_FFFF, 70_000)  # beyond 16 bits
    part.pairs.add(20_000 << 32 | 5)
    part.department, part.name, part.dept_ms = "Sales", "Zoë Müller", 1
    copy = partial.decode(partial.encode(part))
    assert copy == part
    assert dict(copy.days.items()) == {100 << partial.SHIFT | 2: 300, 5_000 << partial.SHIFT: 1}
    assert partial.merge([copy], False).days[20_000][2] == 300
    assert dict(copy.givers.items()) == {0x7FFF_FFFF: 70_000}
    assert copy.name == "Zoë Müller"
    assert partial.mark_of(copy) == partial.MARK.pack(7)
    assert partial.mark_of(partial.Partial()) == partial.NO_MARK


def test_pruning_drops_only_what_no_window_can_see() -> None:
    part = partial.Partial(top=1_000, own=1_000, base=700)
    for day in (800, 899, 900, 950, 1_000):
        part.days.add((day - part.base) << partial.SHIFT)
        part.receivers.raise_to(day, day)
    partial.prune(part, RULES)
    kept = [d for d in (800, 899, 900, 950, 1_000) if d > 1_000 - CFG.keep_days]
    assert sorted(partial.merge([part], False).days) == kept
    assert sorted(part.receivers.values) == kept
