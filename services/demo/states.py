"""Engagement state in memory for the offline run: the worker's own path (`worker.handler.plan`, then the
merges of `model/state.apply`) without Kafka or Redis, so the offline figures are the worker's figures."""

from __future__ import annotations

from collections.abc import Sequence

from catalyst.events.v1 import envelope_pb2

from services.engagement.model.config import ScoringModel
from services.engagement.model.state import State, apply, decode
from services.engagement.worker.handler import Record, plan

NEVER_FUTURE_MS = 1 << 62  # simulated days may lie after the wall clock's today


class MemoryStates:
    """Every employee's state fields, written as one partition of the interactions topic would write them."""

    def __init__(self, model: ScoringModel) -> None:
        self.keep_days = model.keep_days
        self.fields: dict[str, dict[str, str]] = {}
        self.gone: set[str] = set()
        self.newest_ms = 0  # the worker's event-time watermark
        self._offset = 0
        self._decoded: dict[str, State] = {}

    def feed(self, envelopes: Sequence[envelope_pb2.Envelope]) -> None:
        """Applies the envelopes in order; one the worker would dead-letter is a bug of the simulation."""
        records = [
            Record(0, self._offset + n, env.employee_id.encode(), env.SerializeToString(), 0)
            for n, env in enumerate(envelopes)
        ]
        self._offset += len(records)
        work = plan(records, NEVER_FUTURE_MS, 0)
        if work.dead:
            record, reason = work.dead[0]
            raise ValueError(f"the worker would dead-letter simulated event {record.offset}: {reason}")
        for employee in work.forget:
            self.gone.add(employee)
            self.fields.pop(employee, None)
            self._decoded.pop(employee, None)
        for employee, parts in work.writes.items():
            if employee in self.gone:
                continue
            apply(self.fields.setdefault(employee, {}), parts, self.keep_days)
            self._decoded.pop(employee, None)
        self.newest_ms = max(self.newest_ms, work.newest_ms)

    @property
    def employees(self) -> list[str]:
        return list(self.fields)

    def state(self, employee: str) -> State | None:
        """The decoded state (kept until the employee's fields change again); None when unknown or forgotten."""
        if employee not in self.fields:
            return None
        state = self._decoded.get(employee)
        if state is None:
            state = self._decoded[employee] = decode(self.fields[employee])
        return state


def scored(state: State) -> bool:
    """True once something counted for the employee (not only their directory entry)."""
    return bool(state.daily or state.paired or state.totals)
