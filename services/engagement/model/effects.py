"""One valid interaction -> the merges into each employee's state (`state.Op`), read off `spec.RULES`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

from catalyst.events.v1 import envelope_pb2

from services.engagement.model import spec
from services.engagement.model.state import (
    ADD,
    DAY_MS,
    NEWEST,
    Op,
    day_text,
    latest_field,
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


class _Step(NamedTuple):
    """One `spec.Count` with its lookups done once: the counter's code, whether it is the actor's own."""

    code: str
    who: str
    per: str | None
    same_department: bool
    other_department: bool | None
    when: Callable[[Any], bool] | None
    own: bool


def _steps(rule: spec.Rule) -> tuple[_Step, ...]:
    return tuple(
        _Step(
            _CODE[c.counter],
            c.who,
            c.per,
            c.same_department,
            c.other_department,
            None if c.when is spec.always else c.when,
            c.who == spec.ACTOR and c.counter in _OWN,
        )
        for c in rule.counts
    )


_STEPS = {payload: _steps(rule) for payload, rule in spec.RULES.items()}
_LATEST_FIELDS = {name: latest_field(code) for name, code in spec.LATEST.items()}


def effects(env: envelope_pb2.Envelope, payload: str) -> Effects:
    """The merges of one checked Envelope (`validation.check` gave `payload`)."""
    actor, dept, ms = env.employee_id, env.department_id, occurred_ms(env)
    day = ms // DAY_MS
    if payload == "employee_registered":
        name = env.employee_registered.display_name
        ops = [
            (actor, (NEWEST, _LATEST_FIELDS["department"], f"{ms}|{dept}", -1)),
            (actor, (NEWEST, _LATEST_FIELDS["name"], f"{ms}|{name}", -1)),
        ]
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
    crossing = bool(dept) and bool(other_dept) and dept != other_dept
    prefix = day_text(day)
    ops: list[tuple[str, Op]] = []
    own = False
    for step in _STEPS[payload]:
        if (step.same_department and not same) or (step.when is not None and not step.when(p)):
            continue
        if step.other_department is not None and step.other_department != crossing:
            continue
        if step.per is None:
            name = prefix + step.code
        else:
            name = prefix + step.code + tag(getattr(p, step.per) if step.per else actor)
        ops.append((getattr(p, step.who) if step.who else actor, (ADD, name, "1", day)))
        own = own or step.own
    for total in rule.totals:
        if total.when(p):
            ops.append((actor, (ADD, total_field(_CODE[total.counter]), "1", -1)))
            own = True
    for attribute, source in rule.latest:
        ops.append((actor, (NEWEST, _LATEST_FIELDS[attribute], f"{ms}|{getattr(p, source)!r}", -1)))
    activity = (dept, day, pseudonym(actor)) if dept and own else None
    return Effects(ops, activity, None)
