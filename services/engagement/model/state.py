"""One employee's engagement state: the fields it is stored as, how changes merge into it, and its decoding.

State is a bag of named fields, each changed only by merges that commute: add, and newest by event time. So
the state is a function of the set of events applied, whatever order they came in; the figures
(`figures.py`) are pure functions of the state. The Redis store runs the same merge in one Lua script per
employee (`adapters/redis_store.py`); `apply` here is its statement in Python, and one contract test suite
holds both to it.

Field names. A day is UTC days since 1970-01-01 written in base 36, three characters (`day_text`); a tag is
`tag(id)` of a colleague or a value, six characters. A field that starts with `_` never expires.

    <day><code>         daily counter              <day><code><tag>    count per colleague or value a day
    _T<code>            all-time counter           _L<code>            newest value by event time ("<ms>|<value>")
    _t                  newest day
    _n                  changes applied (ScoreChanged.version)
    _m<partition>       offset of the newest event applied from that partition (exactly once)
    _lo                 the oldest day a field belongs to (pruning is due when it left the windows long enough)
    _oo                 the employee's ranking choice (written by the query API): "1" opted out, "0" opted in;
                        absent: no choice made (not ranked where rankings need an opt-in)
    _md                 the department whose member set holds the employee (adapters/redis_store.py)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from hashlib import blake2b

from services.engagement.model import spec

DAY_MS = 86_400_000
TOP, CHANGES, OLDEST, OPT_OUT = "_t", "_n", "_lo", "_oo"
FIXED_PREFIX = "_"  # a field whose name starts with it never expires
MARK_PREFIX = "_m"  # then the source partition
# Days no window reads are dropped once the oldest of them is this much older than needed: one scan of the
# hash per that many days of an employee's activity, instead of one per day.
PRUNE_SLACK_DAYS = 14
ADD, NEWEST = "+", "="
_DIGITS = "0123456789abcdefghijklmnopqrstuvwxyz"
_BY_CODE = {c.code: c.name for c in spec.COUNTERS}
_TOTAL_BY_CODE = {c.code: c.name for c in spec.TOTALS}
_LATEST_BY_CODE = {code: name for name, code in spec.LATEST.items()}


_pseudonym_key = b""


def set_pseudonym_key(key: str) -> None:
    """Keys every pseudonym with the installation's secret (`CommonSettings.pseudonym_key`): each process
    that writes or reads pseudonyms sets it at start-up. Without the key, hashing a list of known ids does not
    tell whose pseudonym is whose."""
    global _pseudonym_key
    _pseudonym_key = key.encode()[:64]  # BLAKE2b's longest key
    pseudonym.cache_clear()
    tag.cache_clear()


@lru_cache(maxsize=1 << 18)
def pseudonym(value: str) -> int:
    """A stable 31-bit number for an id (never 0), keyed: keeps colleagues' ids out of another employee's
    state and department activity."""
    digest = blake2b(value.encode(), digest_size=4, key=_pseudonym_key).digest()
    return int.from_bytes(digest, "big") & 0x7FFFFFFF or 1


def _base36(n: int, width: int) -> str:
    out = ""
    while n:
        n, r = divmod(n, 36)
        out = _DIGITS[r] + out
    return out.rjust(width, "0")


@lru_cache(maxsize=1 << 18)
def tag(value: str) -> str:
    """The pseudonym in base 36, six characters, as field names carry it."""
    return _base36(pseudonym(value), 6)


@lru_cache(maxsize=4096)
def day_text(day: int) -> str:
    """A day in base 36, three characters (until the year 2097)."""
    return _base36(day, 3)


def total_field(code: str) -> str:
    return f"_T{code}"


def latest_field(code: str) -> str:
    return f"_L{code}"


def mark_field(partition: int) -> str:
    return f"{MARK_PREFIX}{partition}"


# One merge into one field: (kind, field, value, day). `day` is the event's day for fields that leave the
# windows, else -1. A plain tuple: the worker builds a few per event.
Op = tuple[str, str, str, int]


def field_day(name: str) -> int:
    """The day a field belongs to (-1: it never expires)."""
    return -1 if name[0] == FIXED_PREFIX else int(name[:3], 36)


def _newer(old: str | None, new: str) -> bool:
    if old is None:
        return True
    old_ms, _, old_value = old.partition("|")
    new_ms, _, new_value = new.partition("|")
    return (int(new_ms), new_value) > (int(old_ms), old_value)


@dataclass
class Applied:
    """What one apply did: ops merged, ops skipped as already applied, ops too old for any window."""

    applied: int = 0
    duplicates: int = 0
    late: int = 0


def apply(
    fields: dict[str, str],
    parts: Sequence[tuple[int, Sequence[tuple[int, Op]]]],
    keep_days: int,
    published: int | None = None,
) -> Applied:
    """Merges one write into `fields`, exactly once: per source partition its ops with their offsets (ascending).

    The statement of what the store's script does (`adapters/redis_store.py`), one call per employee and
    batch. An op at or below its partition's mark was applied before; an op for a day no window reaches any
    more is dropped. `published`: the last day the publisher published everyone's figures for (-1: none yet);
    days its next figures still read are kept although the worker is ahead (an import), so the figures of
    every day in between are the ones that day had. None: nobody publishes from these fields (offline).
    """
    result = Applied()
    top = int(fields.get(TOP, "-1"))
    oldest = int(fields[OLDEST]) if OLDEST in fields else None
    for partition, ops in parts:
        mark_name = mark_field(partition)
        seen = mark = int(fields.get(mark_name, "-1"))
        for offset, (kind, name, value, day) in ops:
            if offset <= seen:  # the ops of one event share its offset
                result.duplicates += 1
                continue
            mark = offset
            if day >= 0:
                if day <= top - keep_days:
                    result.late += 1
                    continue
                top = max(top, day)
                oldest = day if oldest is None else min(oldest, day)
            result.applied += 1
            old = fields.get(name)
            if kind == ADD:
                fields[name] = str(int(old or 0) + int(value))
            elif _newer(old, value):
                fields[name] = value
        if mark > seen:
            fields[mark_name] = str(mark)
    if result.applied:
        fields[TOP] = str(top)
        fields[CHANGES] = str(int(fields.get(CHANGES, 0)) + result.applied)
        limit = top if published is None else min(top, published)
        if oldest is not None and oldest <= limit - keep_days - PRUNE_SLACK_DAYS:
            oldest = prune(fields, limit - keep_days)
        if oldest is not None:
            fields[OLDEST] = str(oldest)
    return result


def prune(fields: dict[str, str], oldest_gone: int) -> int | None:
    """Drops the fields of days at or before `oldest_gone` (no window reads them); returns the oldest day left."""
    left = None
    for name in list(fields):
        day = field_day(name)
        if day < 0:
            continue
        if day <= oldest_gone:
            del fields[name]
        elif left is None or day < left:
            left = day
    return left


@dataclass
class State:
    """One employee's stored state, decoded for the figures."""

    daily: dict[int, dict[str, int]] = field(default_factory=dict)  # day -> counter -> count
    paired: dict[int, dict[str, dict[str, int]]] = field(default_factory=dict)  # day -> counter -> tag -> count
    totals: dict[str, int] = field(default_factory=dict)
    latest: dict[str, str] = field(default_factory=dict)
    top: int = -1
    changes: int = 0
    opt_out: bool = False
    opted_in: bool = False

    @property
    def department(self) -> str:
        return self.latest.get("department", "")

    @property
    def name(self) -> str:
        return self.latest.get("name", "")

    @property
    def completeness(self) -> float:
        return float(self.latest.get("completeness", 0.0))


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value


def decode(raw: Mapping[str, str] | Mapping[bytes, bytes]) -> State:
    """The State of a stored hash (HGETALL's reply or a MemoryState's fields)."""
    state = State()
    for key, value in raw.items():
        name, text = _text(key), _text(value)
        if name[0] != FIXED_PREFIX:
            day, counter = int(name[:3], 36), _BY_CODE.get(name[3])
            if counter is None:
                continue  # a counter no longer in spec.py: its fields age out
            if len(name) > 4:
                state.paired.setdefault(day, {}).setdefault(counter, {})[name[4:]] = int(text)
            else:
                state.daily.setdefault(day, {})[counter] = int(text)
        elif name[1] == "T" and name[2:] in _TOTAL_BY_CODE:
            state.totals[_TOTAL_BY_CODE[name[2:]]] = int(text)
        elif name[1] == "L" and name[2:] in _LATEST_BY_CODE:
            state.latest[_LATEST_BY_CODE[name[2:]]] = text.partition("|")[2]
        elif name == TOP:
            state.top = int(text)
        elif name == CHANGES:
            state.changes = int(text)
        elif name == OPT_OUT:
            state.opt_out = text == "1"
            state.opted_in = text == "0"
    return state
