"""Turns a batch of raw records into one write plan (pure): ops grouped per employee and source partition,
department activity, forget requests and dead letters. Grouping is what makes one Redis call per employee per
batch possible."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from services.engagement.events import Poison, decode, kind
from services.engagement.scoring import Op, effects, moves_clock, occurred_ms


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


def plan(records: Sequence[Record], now_ms: int, max_future_ms: int) -> Plan:
    """Decodes, validates and maps every record; poison records become dead letters with their reason."""
    out = Plan()
    ops = out.ops
    forgotten: set[str] = set()
    for record in records:
        try:
            env = decode(record.value, record.key, now_ms, max_future_ms)
        except Poison as exc:
            out.dead.append((record, str(exc)))
            out.kinds["dead_letter"] += 1
            continue
        out.kinds[kind(env.type)] += 1
        occurred = occurred_ms(env)
        if occurred > out.newest_ms and moves_clock(env):
            out.newest_ms = occurred
        eff = effects(env, occurred)
        if eff.forget is not None:
            if eff.forget not in forgotten:
                forgotten.add(eff.forget)
                out.forget.append(eff.forget)
            out.ops.pop(eff.forget, None)
            continue
        for employee, op in eff.ops:
            if employee not in forgotten:
                by_partition = ops.get(employee)
                if by_partition is None:
                    by_partition = ops[employee] = {}
                entries = by_partition.get(record.partition)
                if entries is None:
                    entries = by_partition[record.partition] = []
                entries.append((record.offset, op))
        if eff.dept_activity is not None:
            out.activity.add(eff.dept_activity)
    return out
