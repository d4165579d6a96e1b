"""One employee's state as written by one source partition, and how the parts add up (pure).

Every event of partition p changes only the slice `{emp:<id>}:s` field `<topic tag>:<p>` of the employees it
touches, so each field has exactly one writer: the worker holding partition p. That worker can compute the
new slice in Python and overwrite it (no read-modify-write in Redis), and the slice carries the offset of the
last event it contains (`mark`): replaying offsets at or below it changes nothing. Own activity arrives on the
employee's own partition; reach and accepted answers arrive from any partition. Readers merge the slices
(`merge`); the figures only depend on the merged counts, so slices may be pruned at any time.

Binary layout (little-endian except the mark, which is big-endian so that compare-and-set can compare the
first 8 bytes as text): mark Q, count I, top i, flags B; [own i, profile_ms q, completeness d, pilot 4I,
dept_ms q, len H + department, len H + name] when flags & 1; then four tables of integers: days
(day * 16 + counter -> count), givers (pseudonym -> day * 2 + other department), receivers (pseudonym -> day),
pair counts (day << 32 | pseudonym -> count). A table is its entry count I, and when not empty the array type codes
and the keys and values, each in the narrowest array type holding their maximum (B, H, I or Q): typically
five bytes per day counter and six per colleague. Encoding and decoding stay in C (array), no Python loop.
"""

from __future__ import annotations

import struct
from array import array
from collections.abc import Iterable
from dataclasses import dataclass, field

from services.engagement.scoring import COUNTERS, EmployeeState, Op

MARK = struct.Struct(">Q")
HEAD = struct.Struct("<Iib")
OWN = struct.Struct("<iqd4Iq")
LEN = struct.Struct("<H")
COUNT = struct.Struct("<I")
TABLE = struct.Struct("<Icc")  # entries, key and value array type codes
EMPTY = COUNT.pack(0)
NO_MARK = b""  # expected mark of a field that does not exist yet
SHIFT = 4  # days-table key = day << SHIFT | counter
MASK = (1 << SHIFT) - 1
ACTIONS = COUNTERS.index("actions")
RECEIVED = COUNTERS.index("received")
UPDATES = COUNTERS.index("profile_updates")
assert len(COUNTERS) <= 1 << SHIFT


@dataclass
class Rules:
    """The scoring parameters applying ops needs (from the scoring config)."""

    keep_days: int
    pair_cap: int
    pair_memory_days: int


@dataclass
class Partial:
    mark: int = -1
    count: int = 0  # events applied: the sum over slices versions the published figures
    top: int = -1  # newest day with a counter in this slice
    own: int = -1  # newest day of own activity (pair caps are kept for the last few own days)
    profile_ms: int = -1
    completeness: float = 0.0
    pilot: list[int] = field(default_factory=lambda: [0, 0, 0, 0])
    dept_ms: int = -1
    department: str = ""
    name: str = ""
    days: dict[int, int] = field(default_factory=dict)
    givers: dict[int, int] = field(default_factory=dict)
    receivers: dict[int, int] = field(default_factory=dict)
    pairs: dict[tuple[int, int], int] = field(default_factory=dict)

    def has_own(self) -> bool:
        return self.own >= 0 or self.profile_ms >= 0 or self.dept_ms >= 0 or any(self.pilot)


@dataclass
class Outcome:
    applied: int = 0
    duplicates: int = 0
    late: int = 0


def apply(part: Partial, ops: Iterable[tuple[int, Op]], rules: Rules) -> Outcome:
    """Applies (offset, op) pairs in offset order; ops at or below the mark are duplicates."""
    out = Outcome()
    keep = rules.keep_days
    days = part.days
    for offset, op in ops:
        if offset <= part.mark:
            out.duplicates += 1
            continue
        part.mark = offset
        part.count += 1
        out.applied += 1
        kind = op.kind
        d = op.day
        if kind == "d":
            ms = int(op.x)
            if ms >= part.dept_ms:
                part.dept_ms = ms
                part.department = op.y
                if op.z:
                    part.name = op.z
            continue
        if kind == "l":
            part.pilot[int(op.x)] += 1
            if op.z == "1":
                part.pilot[3] += 1
            if d > part.own:
                part.own = d
            if d >= part.top - keep + 1:
                if d > part.top:
                    part.top = d
                key = d << SHIFT | ACTIONS
                days[key] = days.get(key, 0) + 1
            continue
        if kind == "f":
            ms = int(op.x)
            if ms >= part.profile_ms:
                part.profile_ms = ms
                part.completeness = float(op.y)
            if d > part.own:
                part.own = d
            if d >= part.top - keep + 1:
                if d > part.top:
                    part.top = d
                key = d << SHIFT | UPDATES
                days[key] = days.get(key, 0) + 1
            else:
                out.late += 1
            continue
        if d < part.top - keep + 1:
            out.late += 1
            continue
        if d > part.top:
            part.top = d
        base = d << SHIFT
        if kind == "c":
            if op.x:
                key = base | int(op.x)
                days[key] = days.get(key, 0) + 1
            if op.z:
                key = base | int(op.z)
                days[key] = days.get(key, 0) + 1
            if op.y == "1" and d > part.own:
                part.own = d
        elif kind == "g":
            if d > part.own:
                part.own = d
            who = int(op.y)
            credit = True
            if d >= part.own - rules.pair_memory_days + 1:
                pair = (d, who)
                count = part.pairs.get(pair, 0)
                if count >= rules.pair_cap:
                    credit = False
                else:
                    part.pairs[pair] = count + 1
            if credit:
                key = base | int(op.x)
                days[key] = days.get(key, 0) + 1
                if op.z:
                    key = base | int(op.z)
                    days[key] = days.get(key, 0) + 1
            else:
                key = base | ACTIONS
                days[key] = days.get(key, 0) + 1
            if part.receivers.get(who, -1) < d:
                part.receivers[who] = d
        elif kind == "r":
            key = base | RECEIVED
            days[key] = days.get(key, 0) + 1
            who = int(op.x)
            value = d * 2 + int(op.y)
            if part.givers.get(who, -1) < value:
                part.givers[who] = value
    return out


def prune(part: Partial, rules: Rules) -> None:
    """Drops days and colleagues that left the longest window, and pair counts older than their memory."""
    lo = part.top - rules.keep_days + 1
    if part.days and min(part.days) >> SHIFT < lo:
        part.days = {k: v for k, v in part.days.items() if k >> SHIFT >= lo}
    if part.givers and min(part.givers.values()) // 2 < lo:
        part.givers = {k: v for k, v in part.givers.items() if v // 2 >= lo}
    if part.receivers and min(part.receivers.values()) < lo:
        part.receivers = {k: v for k, v in part.receivers.items() if v >= lo}
    plo = part.own - rules.pair_memory_days + 1
    if part.pairs and min(part.pairs)[0] < plo:
        part.pairs = {k: v for k, v in part.pairs.items() if k[0] >= plo}


def _code(top: int) -> str:
    return "B" if top < 0x100 else "H" if top < 0x10000 else "I" if top < 0x100000000 else "Q"


def _table(table: dict[int, int]) -> list[bytes]:
    """Entry count, then keys and values each in the narrowest array type that holds their maximum."""
    if not table:
        return [EMPTY]
    kc, vc = _code(max(table)), _code(max(table.values()))
    return [
        TABLE.pack(len(table), kc.encode(), vc.encode()),
        array(kc, table).tobytes(),
        array(vc, table.values()).tobytes(),
    ]


def encode(part: Partial) -> bytes:
    own = part.has_own()
    chunks = [MARK.pack(part.mark), HEAD.pack(part.count, part.top, 1 if own else 0)]
    if own:
        department = part.department.encode()
        name = part.name.encode()
        chunks += [
            OWN.pack(part.own, part.profile_ms, part.completeness, *part.pilot, part.dept_ms),
            LEN.pack(len(department)),
            department,
            LEN.pack(len(name)),
            name,
        ]
    chunks += _table(part.days)
    chunks += _table(part.givers)
    chunks += _table(part.receivers)
    chunks += _table({d << 32 | w: count for (d, w), count in part.pairs.items()})
    return b"".join(chunks)


def mark_of(part: Partial) -> bytes:
    """What compare-and-set expects to find (the slice's first 8 bytes), or NO_MARK for a new slice."""
    return MARK.pack(part.mark) if part.mark >= 0 else NO_MARK


def _read_table(blob: bytes, at: int) -> tuple[dict[int, int], int]:
    (n,) = COUNT.unpack_from(blob, at)
    if not n:
        return {}, at + COUNT.size
    n, kc, vc = TABLE.unpack_from(blob, at)
    at += TABLE.size
    keys, values = array(kc.decode()), array(vc.decode())
    end = at + n * keys.itemsize
    keys.frombytes(blob[at:end])
    at, end = end, end + n * values.itemsize
    values.frombytes(blob[at:end])
    return dict(zip(keys, values, strict=True)), end


def decode(blob: bytes) -> Partial:
    (mark,) = MARK.unpack_from(blob, 0)
    count, top, flags = HEAD.unpack_from(blob, 8)
    part = Partial(mark=mark, count=count, top=top)
    at = 8 + HEAD.size
    if flags & 1:
        own, profile_ms, completeness, p0, p1, p2, p3, dept_ms = OWN.unpack_from(blob, at)
        part.own, part.profile_ms, part.completeness, part.dept_ms = own, profile_ms, completeness, dept_ms
        part.pilot = [p0, p1, p2, p3]
        at += OWN.size
        (n,) = LEN.unpack_from(blob, at)
        part.department = blob[at + 2 : at + 2 + n].decode()
        at += 2 + n
        (n,) = LEN.unpack_from(blob, at)
        part.name = blob[at + 2 : at + 2 + n].decode()
        at += 2 + n
    part.days, at = _read_table(blob, at)
    part.givers, at = _read_table(blob, at)
    part.receivers, at = _read_table(blob, at)
    pairs, at = _read_table(blob, at)
    part.pairs = {(k >> 32, k & 0xFFFFFFFF): v for k, v in pairs.items()}
    return part


def merge(parts: Iterable[Partial], opt_out: bool) -> EmployeeState:
    """The employee's whole state: counters summed, colleagues at their newest day, own facts from the slice
    that saw the newest of them."""
    state = EmployeeState(opt_out=opt_out)
    width = len(COUNTERS)
    days = state.days
    givers: dict[int, int] = {}
    pilot = [0, 0, 0, 0]
    profile_ms = dept_ms = -1
    for part in parts:
        for key, value in part.days.items():
            counts = days.get(key >> SHIFT)
            if counts is None:
                counts = days[key >> SHIFT] = [0] * width
            counts[key & MASK] += value
        for who, value in part.givers.items():
            if givers.get(who, -1) < value:
                givers[who] = value
        for who, day in part.receivers.items():
            if state.receivers.get(who, -1) < day:
                state.receivers[who] = day
        for i in range(4):
            pilot[i] += part.pilot[i]
        if part.profile_ms > profile_ms:
            profile_ms, state.completeness = part.profile_ms, part.completeness
        if part.dept_ms > dept_ms:
            dept_ms, state.department, state.name = part.dept_ms, part.department, part.name
        if part.top > state.as_of_day:
            state.as_of_day = part.top
        state.changes += part.count
    state.givers = {who: (value // 2, bool(value & 1)) for who, value in givers.items()}
    state.pilot = (pilot[0], pilot[1], pilot[2], pilot[3])
    return state
