"""Holds a process to a share of one core: the publisher's CPU would otherwise come out of what the consumer,
Redis and the broker need (a low priority alone does not keep its Redis and broker requests from competing)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

WINDOW_SECONDS = 1.0  # idle time earns credit for at most this long


class CpuShare:
    """Awaited after each piece of work: sleeps off the CPU time used beyond `share` of the wall time since the
    window began."""

    def __init__(
        self,
        share: float,
        *,
        wall: Callable[[], float] = time.monotonic,
        cpu: Callable[[], float] = time.process_time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if not 0 < share <= 1:
            raise ValueError("a CPU share is in (0, 1]")
        self.share = share
        self.wall = wall
        self.cpu = cpu
        self.sleep = sleep
        self.restart()

    def restart(self) -> None:
        """Time spent unpaced does not count: the window begins now."""
        self._since = (self.wall(), self.cpu())

    async def __call__(self) -> None:
        began, cpu_began = self._since
        ahead = (self.cpu() - cpu_began) / self.share - (self.wall() - began)
        if ahead > 0:
            await self.sleep(ahead)
        if self.wall() - began >= WINDOW_SECONDS:
            self.restart()
