"""Turns a batch of raw records into one write plan (pure): ops grouped per employee and source partition,
department activity, forget requests and dead letters. Grouping is what makes one Redis call per employee per
batch possible."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from services.engagement._plan import Planner
from services.engagement.events import KIND, MAX_ID, PAYLOAD_FIELD
from services.engagement.scoring import PSEUDONYMS, C, Op, pseudonym_entry


class Record(NamedTuple):
    """The parts of a Kafka record the processor needs."""

    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp_ms: int


@dataclass
class Plan:
    # employee -> source partition -> (offset, op) in offset order: one state slice per (employee, partition)
    ops: dict[str, dict[int, list[tuple[int, Op]]]] = field(default_factory=dict)
    activity: dict[tuple[str, int], set[int]] = field(default_factory=dict)  # (department, day) -> pseudonyms
    forget: list[str] = field(default_factory=list)
    dead: list[tuple[Record, str]] = field(default_factory=list)
    kinds: Counter[str] = field(default_factory=Counter)
    newest_ms: int = 0


# Decoding, validation and the mapping to ops run in C (docs/decisions/0008), with the rules of scoring.py.
_PLANNER = Planner(PAYLOAD_FIELD, C, PSEUDONYMS, pseudonym_entry, Op, MAX_ID)


def plan(records: Sequence[Record], now_ms: int, max_future_ms: int) -> Plan:
    """Decodes, validates and maps every record; poison records become dead letters with their reason."""
    ops, activity, forget, dead, counts, newest_ms = _PLANNER.plan(records, now_ms, max_future_ms)
    kinds = Counter({KIND[payload]: n for payload, n in counts.items()})
    if dead:
        kinds["dead_letter"] = len(dead)
    return Plan(ops, activity, forget, dead, kinds, newest_ms)
