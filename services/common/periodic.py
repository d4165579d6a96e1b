"""A background job that runs every interval until stopped (retention sweeps), surviving its own failures."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)


class Periodic:
    """Runs `job` at once and then every `interval_seconds`; a failing run is logged and retried next time, so
    a Redis outage delays a sweep but never ends it."""

    def __init__(self, name: str, job: Callable[[], Awaitable[object]], interval_seconds: float) -> None:
        self._name = name
        self._job = job
        self._interval = interval_seconds
        self._stopping = asyncio.Event()
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=self._name)

    async def stop(self) -> None:
        """Lets a run in progress finish, then ends."""
        self._stopping.set()
        if self._task is not None:
            await asyncio.wait({self._task})

    async def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                await self._job()
            except Exception:
                log.exception("%s failed; it runs again in %.0fs", self._name, self._interval)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self._interval)
