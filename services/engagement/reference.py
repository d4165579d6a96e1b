"""A plain-Python model of the engagement figures, computed straight from a list of events.

The tests compare what the worker left in Redis (after crashes, replays, backfills) with this model.
It shares the event rules (`scoring.effects`) and the window maths (`scoring.figures`) with the worker,
but none of the storage: no offsets, no pruning, no Lua, every event kept, colleagues by full id.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from catalyst.events.v1 import envelope_pb2

from services.engagement.config import ScoringConfig
from services.engagement.scoring import COUNTERS, EmployeeState, Figures, effects, figures, moves_clock

ACTIONS = COUNTERS.index("actions")
RECEIVED = COUNTERS.index("received")
UPDATES = COUNTERS.index("profile_updates")


@dataclass
class _Employee:
    days: dict[int, list[int]] = field(default_factory=dict)
    givers: dict[str, int] = field(default_factory=dict)  # pseudonym (as op text) -> max(day * 2 + other)
    receivers: dict[str, int] = field(default_factory=dict)
    pairs: dict[tuple[int, str], int] = field(default_factory=dict)
    own_day: int = -1
    profile_ms: int = -1
    completeness: float = 0.0
    pilot: list[int] = field(default_factory=lambda: [0, 0, 0, 0])
    dept_ms: int = -1
    department: str = ""

    def day(self, d: int) -> list[int]:
        return self.days.setdefault(d, [0] * len(COUNTERS))


class Reference:
    """Feeds events in log order (per employee, the order of their partition) and answers figures."""

    def __init__(self, cfg: ScoringConfig) -> None:
        self.cfg = cfg
        self.employees: dict[str, _Employee] = {}
        self.forgotten: set[str] = set()
        self.newest_ms = 0

    def feed(self, events: Iterable[envelope_pb2.Envelope]) -> None:
        cap = self.cfg.conversation.pair_cap_per_day
        memory = self.cfg.conversation.pair_memory_days
        for env in events:
            if moves_clock(env):
                self.newest_ms = max(self.newest_ms, env.occurred_at.ToMilliseconds())
            eff = effects(env)
            if eff.forget is not None:
                self.forgotten.add(eff.forget)
                self.employees.pop(eff.forget, None)
            for who, op in eff.ops:
                if who in self.forgotten:
                    continue
                e = self.employees.setdefault(who, _Employee())
                d = op.day
                if op.kind == "d":
                    if int(op.x) >= e.dept_ms:
                        e.dept_ms, e.department = int(op.x), op.y
                elif op.kind == "l":
                    e.pilot[int(op.x)] += 1
                    if op.z == "1":
                        e.pilot[3] += 1
                    e.own_day = max(e.own_day, d)
                    e.day(d)[ACTIONS] += 1
                elif op.kind == "f":
                    if int(op.x) >= e.profile_ms:
                        e.profile_ms, e.completeness = int(op.x), float(op.y)
                    e.own_day = max(e.own_day, d)
                    e.day(d)[UPDATES] += 1
                elif op.kind == "c":
                    c = e.day(d)
                    if op.x:
                        c[int(op.x)] += 1
                    if op.z:
                        c[int(op.z)] += 1
                    if op.y == "1":
                        e.own_day = max(e.own_day, d)
                elif op.kind == "g":
                    e.own_day = max(e.own_day, d)
                    c = e.day(d)
                    credit = True
                    if d >= e.own_day - memory + 1:
                        count = e.pairs.get((d, op.y), 0)
                        credit = count < cap
                        e.pairs[(d, op.y)] = count + 1 if credit else count
                    if credit:
                        c[int(op.x)] += 1
                        if op.z:
                            c[int(op.z)] += 1
                    else:
                        c[ACTIONS] += 1
                    e.receivers[op.y] = max(e.receivers.get(op.y, -1), d)
                elif op.kind == "r":
                    e.day(d)[RECEIVED] += 1
                    e.givers[op.x] = max(e.givers.get(op.x, -1), d * 2 + int(op.y))

    def state(self, employee: str) -> EmployeeState | None:
        e = self.employees.get(employee)
        if e is None:
            return None
        return EmployeeState(
            days={d: list(c) for d, c in e.days.items() if any(c)},
            givers={int(k): (v // 2, bool(v & 1)) for k, v in e.givers.items()},
            receivers={int(k): v for k, v in e.receivers.items()},
            completeness=e.completeness,
            pilot=(e.pilot[0], e.pilot[1], e.pilot[2], e.pilot[3]),
            as_of_day=max(e.days, default=-1),
            department=e.department,
        )

    def figures(self, as_of_day: int) -> dict[str, Figures]:
        """Figures of every known employee as of `as_of_day`."""
        out = {}
        for employee in self.employees:
            state = self.state(employee)
            if state is not None:
                out[employee] = figures(state, as_of_day, self.cfg)
        return out
