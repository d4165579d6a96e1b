"""One employee's state as written by one source partition, and how the parts add up (pure).

Every event of partition p changes only the slice `{emp:<id>}:s` field `<topic tag>:<p>` of the employees it
touches, so each field has exactly one writer: the worker holding partition p. That worker can compute the
new slice in Python and overwrite it (no read-modify-write in Redis), and the slice carries the offset of the
last event it contains (`mark`): replaying offsets at or below it changes nothing. Own activity arrives on the
employee's own partition; reach and accepted answers arrive from any partition. Readers merge the slices
(`merge`); the figures only depend on the merged counts, so slices may be pruned at any time.

Binary layout (little-endian except the mark, which is big-endian so that compare-and-set can compare the
first 8 bytes as text): mark Q, count I, top i, base i, flags B; [own i, profile_ms q, completeness d,
pilot 4I, dept_ms q, len H + department, len H + name] when flags & 1; then four tables of integers, each
present when its flag (2, 4, 8, 16) is set: days ((day - base) * 16 + counter -> count; base is a day before
any kept day, so keys fit 16 bits for about eleven years), givers (pseudonym -> day * 2 + other department),
receivers (pseudonym -> day), pair counts (day << 32 | pseudonym -> count). A table is its entry count I,
the array type codes, then the keys and the values, each in the narrowest array type that has held them
(B, H, I or Q): typically three bytes per day counter and six per colleague. In memory a table is those two
arrays plus an index, so encoding a slice copies memory instead of looping in Python.
"""

from __future__ import annotations

import struct
from array import array
from collections.abc import Iterable
from dataclasses import dataclass, field

from services.engagement.scoring import COUNTERS, EmployeeState, Op

MARK = struct.Struct(">Q")
HEAD = struct.Struct("<IiiB")
OWN = struct.Struct("<iqd4Iq")
LEN = struct.Struct("<H")
TABLE = struct.Struct("<Icc")  # entries, key and value array type codes
NO_BASE = -(1 << 31)
OWN_FLAG = 1
TABLE_FLAGS = (2, 4, 8, 16)  # days, givers, receivers, pairs
NO_MARK = b""  # expected mark of a field that does not exist yet
PRUNE_EVERY_DAYS = 7
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


WIDER = {"B": "H", "H": "I", "I": "Q"}
CODES = {code: code.encode() for code in "BHIQ"}


class Table:
    """An int -> int map kept as the two arrays that are stored, plus an index of positions."""

    __slots__ = ("keys", "values", "_index")

    def __init__(self, key_code: str = "I", value_code: str = "B") -> None:
        self.keys = array(key_code)
        self.values = array(value_code)
        self._index: dict[int, int] | None = None

    @property
    def index(self) -> dict[int, int]:
        """Built on first use: readers that only merge never need it."""
        if self._index is None:
            self._index = dict(zip(self.keys, range(len(self.keys)), strict=True))
        return self._index

    def __len__(self) -> int:
        return len(self.keys)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Table) and dict(self.items()) == dict(other.items())

    def __repr__(self) -> str:
        return f"Table({dict(self.items())})"

    def items(self) -> Iterable[tuple[int, int]]:
        return zip(self.keys, self.values, strict=True)

    def get(self, key: int, default: int) -> int:
        i = self.index.get(key)
        return default if i is None else self.values[i]

    def _append(self, key: int, value: int) -> None:
        self.index[key] = len(self.keys)
        try:
            self.keys.append(key)
        except OverflowError:
            self.keys = array(WIDER[self.keys.typecode], self.keys)
            self.keys.append(key)
        try:
            self.values.append(value)
        except OverflowError:
            self.values = array(WIDER[self.values.typecode], self.values)
            self.values.append(value)

    def _set(self, i: int, value: int) -> None:
        try:
            self.values[i] = value
        except OverflowError:
            self.values = array(WIDER[self.values.typecode], self.values)
            self.values[i] = value

    def add(self, key: int, amount: int = 1) -> None:
        i = self.index.get(key)
        if i is None:
            self._append(key, amount)
        else:
            self._set(i, self.values[i] + amount)

    def raise_to(self, key: int, value: int) -> None:
        """Keeps the larger of the stored and the given value."""
        i = self.index.get(key)
        if i is None:
            self._append(key, value)
        elif self.values[i] < value:
            self._set(i, value)

    def keep(self, wanted: Iterable[bool]) -> None:
        """Keeps the entries whose flag (in entry order) is true."""
        pairs = [(k, v) for (k, v), w in zip(self.items(), wanted, strict=True) if w]
        self.keys = array(self.keys.typecode, [k for k, _ in pairs])
        self.values = array(self.values.typecode, [v for _, v in pairs])
        self._index = None

    def chunks(self) -> list[bytes]:
        codes = TABLE.pack(len(self.keys), CODES[self.keys.typecode], CODES[self.values.typecode])
        return [codes, self.keys.tobytes(), self.values.tobytes()]

    @classmethod
    def read(cls, blob: bytes, at: int) -> tuple[Table, int]:
        n, kc, vc = TABLE.unpack_from(blob, at)
        table = cls(kc.decode(), vc.decode())
        at += TABLE.size
        end = at + n * table.keys.itemsize
        table.keys.frombytes(blob[at:end])
        at, end = end, end + n * table.values.itemsize
        table.values.frombytes(blob[at:end])
        return table, end


def _days() -> Table:
    return Table("H", "B")  # (day - base) * 16 + counter -> count


def _people() -> Table:
    return Table("I", "H")  # pseudonym -> day (* 2 + other department, for givers)


def _pairs() -> Table:
    return Table("Q", "B")  # day << 32 | pseudonym -> count


@dataclass
class Partial:
    mark: int = -1
    count: int = 0  # events applied: the sum over slices versions the published figures
    top: int = -1  # newest day with a counter in this slice
    base: int = NO_BASE  # days-table keys count days from here
    own: int = -1  # newest day of own activity (pair caps are kept for the last few own days)
    profile_ms: int = -1
    completeness: float = 0.0
    pilot: list[int] = field(default_factory=lambda: [0, 0, 0, 0])
    dept_ms: int = -1
    department: str = ""
    name: str = ""
    days: Table = field(default_factory=_days)
    givers: Table = field(default_factory=_people)
    receivers: Table = field(default_factory=_people)
    pairs: Table = field(default_factory=_pairs)
    pruned: int = field(default=-(1 << 40), compare=False)  # oldest day kept at the last prune (not stored)

    def has_own(self) -> bool:
        return self.own >= 0 or self.profile_ms >= 0 or self.dept_ms >= 0 or any(self.pilot)


@dataclass
class Outcome:
    applied: int = 0
    duplicates: int = 0
    late: int = 0


def _day_base(part: Partial, d: int, keep: int) -> int | None:
    """Day d's days-table key (counter 0), moving the slice's newest day; None when d is older than the
    longest window before it (late: no window can see it any more)."""
    if d < part.top - keep + 1:
        return None
    if d > part.top:
        part.top = d
    if part.base == NO_BASE:
        part.base = d - keep
    return (d - part.base) << SHIFT


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
            base = _day_base(part, d, keep)
            if base is not None:  # pilot counters are all-time: only the activity mark is late
                days.add(base | ACTIONS)
            continue
        if kind == "f":
            ms = int(op.x)
            if ms >= part.profile_ms:
                part.profile_ms = ms
                part.completeness = float(op.y)
            if d > part.own:
                part.own = d
            base = _day_base(part, d, keep)
            if base is None:
                out.late += 1
            else:
                days.add(base | UPDATES)
            continue
        base = _day_base(part, d, keep)
        if base is None:
            out.late += 1
            continue
        if kind == "c":
            if op.x:
                days.add(base | int(op.x))
            if op.z:
                days.add(base | int(op.z))
            if op.y == "1" and d > part.own:
                part.own = d
        elif kind == "g":
            if d > part.own:
                part.own = d
            who = int(op.y)
            credit = True
            if d >= part.own - rules.pair_memory_days + 1:
                pair = d << 32 | who
                if part.pairs.get(pair, 0) >= rules.pair_cap:
                    credit = False
                else:
                    part.pairs.add(pair)
            if credit:
                days.add(base | int(op.x))
                if op.z:
                    days.add(base | int(op.z))
            else:
                days.add(base | ACTIONS)
            part.receivers.raise_to(who, d)
        elif kind == "r":
            days.add(base | RECEIVED)
            part.givers.raise_to(int(op.x), d * 2 + int(op.y))
    return out


def prune(part: Partial, rules: Rules) -> None:
    """Drops days and colleagues that left the longest window, and pair counts older than their memory.

    Every PRUNE_EVERY_DAYS of the slice's newest day only: the figures ignore what is older anyway, and the
    scan costs more than the bytes it saves in between.
    """
    lo = part.top - rules.keep_days + 1
    if lo < part.pruned + PRUNE_EVERY_DAYS:
        return
    part.pruned = lo
    first = (lo - part.base) << SHIFT  # the smallest key of a kept day
    if part.days and min(part.days.keys) < first:
        part.days.keep(k >= first for k in part.days.keys)
    if part.givers and min(part.givers.values) // 2 < lo:
        part.givers.keep(v // 2 >= lo for v in part.givers.values)
    if part.receivers and min(part.receivers.values) < lo:
        part.receivers.keep(v >= lo for v in part.receivers.values)
    plo = part.own - rules.pair_memory_days + 1
    if part.pairs and min(part.pairs.keys) >> 32 < plo:
        part.pairs.keep(k >> 32 >= plo for k in part.pairs.keys)


def encode(part: Partial) -> bytes:
    own = part.has_own()
    flags = OWN_FLAG if own else 0
    chunks = [MARK.pack(part.mark), b""]
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
    for flag, table in zip(TABLE_FLAGS, (part.days, part.givers, part.receivers, part.pairs), strict=True):
        if table.keys:
            flags |= flag
            chunks += table.chunks()
    chunks[1] = HEAD.pack(part.count, part.top, part.base, flags)
    return b"".join(chunks)


def mark_of(part: Partial) -> bytes:
    """What compare-and-set expects to find (the slice's first 8 bytes), or NO_MARK for a new slice."""
    return MARK.pack(part.mark) if part.mark >= 0 else NO_MARK


def decode(blob: bytes) -> Partial:
    (mark,) = MARK.unpack_from(blob, 0)
    count, top, base, flags = HEAD.unpack_from(blob, 8)
    part = Partial(mark=mark, count=count, top=top, base=base)
    at = 8 + HEAD.size
    if flags & OWN_FLAG:
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
    tables = []
    for flag, empty in zip(TABLE_FLAGS, (_days, _people, _people, _pairs), strict=True):
        if flags & flag:
            table, at = Table.read(blob, at)
        else:
            table = empty()
        tables.append(table)
    part.days, part.givers, part.receivers, part.pairs = tables
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
        base = part.base
        for key, value in part.days.items():
            day = base + (key >> SHIFT)
            counts = days.get(day)
            if counts is None:
                counts = days[day] = [0] * width
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
