"""A core of its own for the engagement worker during the benchmark, as an operator would give it one.

The worker process is started pinned to that core and the publisher to the others (bench/worker.py); what
else runs on this machine is kept off it here: this process (the load generator), the private Redis and the
local broker.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from bench import cpus
from bench.processes import pin_threads, unpin_threads


@dataclass(frozen=True)
class Cores:
    worker: frozenset[int]  # the worker process's
    others: frozenset[int]  # everything else's

    def as_dict(self) -> dict[str, str]:
        return {"worker": cpus.text(self.worker), "others": cpus.text(self.others)}


def split() -> Cores | None:
    """The last CPU this process may use for the worker, the rest for everything else; None with one CPU."""
    allowed = os.sched_getaffinity(0)
    if len(allowed) < 2:
        return None
    worker = frozenset({max(allowed)})
    return Cores(worker, frozenset(allowed) - worker)


@contextmanager
def kept_off(cores: Cores, pids: list[int]) -> Iterator[None]:
    """This process and `pids` (Redis, the broker) run on `cores.others` while the block runs; afterwards
    they get their CPUs back (the broker outlives the benchmark)."""
    held = [(pid, pin_threads(pid, cores.others)) for pid in [os.getpid(), *pids]]
    try:
        yield
    finally:
        for pid, before in held:
            unpin_threads(pid, before)
