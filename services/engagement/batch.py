"""Turns a batch of raw records into one write plan (pure): ops grouped per employee and source partition,
department activity, forget requests and dead letters. Grouping is what makes one Redis call per employee per
batch possible."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from services.engagement.events import PAYLOAD_FIELD, Poison, check, kind
from services.engagement.scoring import DIRECTORY_FACTS, Op, payload_effects


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
    activity: set[tuple[str, int, int]] = field(default_factory=set)
    forget: list[str] = field(default_factory=list)
    dead: list[tuple[Record, str]] = field(default_factory=list)
    kinds: Counter[str] = field(default_factory=Counter)
    newest_ms: int = 0


# payload field -> its event kind for metrics
KIND = {payload: kind(type_name) for type_name, payload in PAYLOAD_FIELD.items()}


def plan(records: Sequence[Record], now_ms: int, max_future_ms: int) -> Plan:
    """Decodes, validates and maps every record; poison records become dead letters with their reason.

    The worker's hot path: everything per record is read once into locals, and kinds are counted per payload
    field and named at the end.
    """
    out = Plan()
    ops = out.ops
    dead = out.dead
    activity = out.activity
    newest = 0
    counts: dict[str, int] = {}
    forgotten: set[str] = set()
    for record in records:
        partition, offset, key, value, _ = record
        try:
            _, field_name, payload, occurred, actor, dept = check(value, key, now_ms, max_future_ms)
        except Poison as exc:
            dead.append((record, str(exc)))
            continue
        counts[field_name] = counts.get(field_name, 0) + 1
        if occurred > newest and field_name not in DIRECTORY_FACTS:
            newest = occurred
        employee_ops, dept_activity, forget = payload_effects(field_name, payload, actor, dept, occurred)
        if forget is not None:
            if forget not in forgotten:
                forgotten.add(forget)
                out.forget.append(forget)
            ops.pop(forget, None)
            continue
        for employee, op in employee_ops:
            if employee not in forgotten:
                by_partition = ops.get(employee)
                if by_partition is None:
                    by_partition = ops[employee] = {}
                entries = by_partition.get(partition)
                if entries is None:
                    entries = by_partition[partition] = []
                entries.append((offset, op))
        if dept_activity is not None:
            activity.add(dept_activity)
    out.newest_ms = newest
    out.kinds.update({KIND[payload]: n for payload, n in counts.items()})
    if dead:
        out.kinds["dead_letter"] = len(dead)
    return out
