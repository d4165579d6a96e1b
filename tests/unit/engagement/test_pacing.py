"""The publisher's CPU share: work beyond the share is slept off, idle time earns credit for one window only."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from services.engagement.pacing import CpuShare


@dataclass
class Clocks:
    wall: float = 100.0
    cpu: float = 5.0

    async def sleep(self, seconds: float) -> None:
        self.wall += seconds

    def work(self, seconds: float) -> None:
        self.wall += seconds
        self.cpu += seconds


def share(clocks: Clocks, fraction: float) -> CpuShare:
    return CpuShare(fraction, wall=lambda: clocks.wall, cpu=lambda: clocks.cpu, sleep=clocks.sleep)


async def test_busy_work_is_held_to_its_share_of_a_core() -> None:
    clocks = Clocks()
    pace = share(clocks, 0.1)
    started = clocks.wall
    for _ in range(50):
        clocks.work(0.02)  # a chunk
        await pace()
    assert clocks.wall - started == pytest.approx(10.0, rel=0.05)  # 1 s of CPU at a tenth of a core


async def test_waiting_is_not_work() -> None:
    clocks = Clocks()
    pace = share(clocks, 0.1)
    clocks.wall += 0.5  # waiting for Redis or the broker uses no CPU
    clocks.work(0.01)
    before = clocks.wall
    await pace()
    assert clocks.wall == before


async def test_idle_time_earns_credit_for_one_window_only() -> None:
    clocks = Clocks()
    pace = share(clocks, 0.5)
    clocks.wall += 60.0
    clocks.work(0.01)
    await pace()  # the window began a minute ago: a new one begins now
    clocks.work(1.0)
    before = clocks.wall
    await pace()
    assert clocks.wall - before == pytest.approx(1.0, rel=0.05)  # the minute's credit is gone


def test_a_share_is_a_fraction_of_one_core() -> None:
    with pytest.raises(ValueError):
        CpuShare(0)
    with pytest.raises(ValueError):
        CpuShare(1.5)


async def test_work_done_unpaced_is_not_slept_off_later() -> None:
    clocks = Clocks()
    pace = share(clocks, 0.1)
    clocks.work(5.0)  # the worker was idle: the publisher ran unpaced
    pace.restart()
    clocks.work(0.01)
    before = clocks.wall
    await pace()
    assert clocks.wall - before == pytest.approx(0.09, rel=0.05)
