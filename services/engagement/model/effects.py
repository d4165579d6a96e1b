"""One valid interaction -> the merges into each employee's state (`state.Op`), read off `spec.RULES`."""

from __future__ import annotations

from typing import NamedTuple

from catalyst.events.v1 import envelope_pb2

from services.engagement.model import spec
from services.engagement.model.state import (
    ADD,
    DAY_MS,
    MAX,
    NEWEST,
    Op,
    colleague_field,
    day_field,
    latest_field,
    pair_field,
    pseudonym,
    tag,
    total_field,
)

_CODE = {c.name: c.code for c in (*spec.COUNTERS, *spec.TOTALS)}
_OWN = {c.name for c in spec.COUNTERS if c.own} | {c.name for c in spec.TOTALS}
# Directory facts happen on the directory's clock (when HR or an import ran), not in the intranet's event
# time: they must not move the event-time watermark, or a backfill of history would be judged "as of" the
# day the directory was imported.
DIRECTORY_FACTS = frozenset({"employee_registered", "employee_forgotten"})


class Effects(NamedTuple):
    """What one event does: merges per employee, the actor's department activity, whom it forgets."""

    ops: list[tuple[str, Op]]
    activity: tuple[str, int, int] | None  # (department, day, pseudonym of the actor)
    forget: str | None


NO_EFFECTS = Effects([], None, None)


def occurred_ms(env: envelope_pb2.Envelope) -> int:
    ts = env.occurred_at
    return ts.seconds * 1000 + ts.nanos // 1_000_000


def moves_clock(payload: str) -> bool:
    """True for interactions, whose occurred_at advances the event-time watermark."""
    return payload not in DIRECTORY_FACTS


def effects(env: envelope_pb2.Envelope, payload: str) -> Effects:
    """The merges of one checked Envelope (`validation.check` gave `payload`)."""
    actor, dept, ms = env.employee_id, env.department_id, occurred_ms(env)
    day = ms // DAY_MS
    if payload == "employee_registered":
        p = env.employee_registered
        ops = [(actor, Op(NEWEST, latest_field(spec.LATEST["department"]), f"{ms}|{dept}", -1))]
        ops.append((actor, Op(NEWEST, latest_field(spec.LATEST["name"]), f"{ms}|{p.display_name}", -1)))
        return Effects(ops, None, None)
    if payload == "employee_forgotten":
        return Effects([], None, actor)
    rule = spec.RULES.get(payload)
    if rule is None:
        return NO_EFFECTS
    p = getattr(env, payload)
    other = getattr(p, rule.counterpart) if rule.counterpart else ""
    if other == actor:
        return NO_EFFECTS  # self-interactions give nothing to anyone
    other_dept = getattr(p, rule.department_of) if rule.department_of else ""
    same = bool(dept) and dept == other_dept
    ops: list[tuple[str, Op]] = []
    own = False
    for count in rule.counts:
        if (count.same_department and not same) or not count.when(p):
            continue
        who = getattr(p, count.who) if count.who else actor
        code = _CODE[count.counter]
        if count.per is None:
            name = day_field(day, code)
        else:
            name = pair_field(day, code, tag(getattr(p, count.per) if count.per else actor))
        ops.append((who, Op(ADD, name, "1", day)))
        own = own or (who == actor and count.counter in _OWN)
    for total in rule.totals:
        if total.when(p):
            ops.append((actor, Op(ADD, total_field(_CODE[total.counter]), "1", -1)))
            own = True
    if rule.met:
        crossing = 1 if dept and other_dept and dept != other_dept else 0
        ops.append((other, Op(MAX, colleague_field(tag(actor)), str(day * 2 + crossing), day)))
    for attribute, source in rule.latest:
        ops.append((actor, Op(NEWEST, latest_field(spec.LATEST[attribute]), f"{ms}|{getattr(p, source)!r}", -1)))
    activity = (dept, day, pseudonym(actor)) if dept and own else None
    return Effects(ops, activity, None)
