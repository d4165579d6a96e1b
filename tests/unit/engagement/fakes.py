"""In-memory stand-ins for the engagement store (cosmicpython's FakeRepository): the handler's and publisher's
unit tests run on them, and `expected_states` is what the integration tests hold Redis to."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence

from services.common.settings import CommonSettings
from services.engagement.adapters.redis_store import Board, Writes
from services.engagement.model import state as model_state
from services.engagement.model.config import ScoringModel
from services.engagement.model.state import Applied, State
from services.engagement.worker.handler import Record, plan

# The key the processes under test use (the settings' default), so a test's store finds their markers.
PSEUDONYM_KEY: str = CommonSettings.model_fields["pseudonym_key"].default
MARKER_TTL = 400 * 86_400


def live(fields: dict[str, str] | None) -> bool:
    """The employee has state (an erased one has none)."""
    return bool(fields)


class MemoryStore:
    """What RedisStore does, on dicts: the merges are model/state.apply, the statement the Lua script mirrors."""

    def __init__(self, keep_days: int) -> None:
        self.keep_days = keep_days
        self.fields: dict[str, dict[str, str]] = {}
        self.activity: dict[tuple[str, int], set[int]] = {}
        self.dirty: list[str] = []
        self.watermark_ms = 0
        self.boards: dict[str, Board] = {}
        self.gone: set[str] = set()  # erased employees: nothing merges into them any more
        self.active: dict[str, int] = {}  # employee -> newest day with activity (the day rollover reads it)
        self.published_through = -1  # the publisher's cursor in event time

    async def apply(self, writes: Writes, activity: dict[tuple[str, int], set[int]], newest_ms: int) -> Applied:
        total = Applied()
        for employee, parts in writes.items():
            if employee in self.gone:
                continue
            fields = self.fields.setdefault(employee, {})
            result = model_state.apply(fields, parts, self.keep_days, self.published_through)
            total.applied += result.applied
            total.duplicates += result.duplicates
            total.late += result.late
            if employee not in self.dirty:
                self.dirty.append(employee)
        for key, who in activity.items():
            self.activity.setdefault(key, set()).update(who)
        self.watermark_ms = max(self.watermark_ms, newest_ms)
        return total

    async def sync_memberships(self, employees: Sequence[str]) -> None:
        """Memberships are read off the state here."""

    async def forget(self, employee: str, windows: Sequence[str]) -> None:
        self.fields.pop(employee, None)
        self.gone.add(employee)
        self.boards.pop(employee, None)

    async def watermark(self) -> int:
        return self.watermark_ms

    async def read_states(self, employees: Sequence[str]) -> dict[str, State | None]:
        return {e: model_state.decode(self.fields[e]) if live(self.fields.get(e)) else None for e in employees}

    async def forgotten(self, employees: Sequence[str]) -> set[str]:
        return {e for e in employees if not live(self.fields.get(e))}

    async def take_dirty(self, count: int, cutoff: float) -> list[str]:
        return self.dirty[:count]

    async def published(
        self, employees: Sequence[str], boards: Sequence[Board], tops: dict[str, int], sizes: tuple[int, int]
    ) -> None:
        self.boards.update({b.employee: b for b in boards})
        self.dirty = [e for e in self.dirty if e not in employees]
        for employee, top in tops.items():
            self.active[employee] = max(top, self.active.get(employee, top))

    async def published_day(self) -> int:
        return self.published_through

    async def set_published_day(self, day: int) -> None:
        self.published_through = max(self.published_through, day)

    async def marked(self) -> list[str]:
        return sorted(self.dirty)

    async def rollover(self, day: int) -> int:
        marked = [e for e, top in self.active.items() if top > day - self.keep_days]
        self.dirty += [e for e in marked if e not in self.dirty]
        return len(marked)

    async def drop_leaderboards(self, keep: Sequence[str] = ()) -> None:
        if not keep:
            self.boards.clear()


def expected_states(records: Iterable[Record], model: ScoringModel) -> dict[str, State]:
    """The states a worker must leave for these records, however it was interrupted or batched."""
    store = MemoryStore(model.keep_days)
    work = plan(list(records), 1 << 62, 0)

    async def run() -> None:
        for employee in work.forget:
            await store.forget(employee, [])
        await store.apply(work.writes, work.activity, work.newest_ms)

    asyncio.run(run())
    return {e: model_state.decode(f) for e, f in store.fields.items() if live(f)}
