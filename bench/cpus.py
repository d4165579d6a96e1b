"""CPU affinity for the benchmark's processes: how the engagement worker gets a core of its own.

A process at ~90 % of its core waits, now and then, behind whatever else the scheduler puts on that core (Redis,
the broker, the publisher); at that load a few such waits make the tail of its latency (docs/operations.md,
"A core of its own"). Threads inherit the affinity of the thread that creates them, so a process is pinned
before it starts any: between fork and exec (`pinned`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable


def text(cpus: Iterable[int]) -> str:
    """The Linux CPU list of a set of CPUs ("0,1,5"), for logs and reports."""
    return ",".join(str(cpu) for cpu in sorted(cpus))


def pin(cpus: frozenset[int]) -> None:
    """Restricts the calling thread, and so every thread it starts later, to these CPUs. The kernel leaves out
    CPUs the process may not use (a container's cpuset); none of them being usable is an error, not a no-op."""
    try:
        os.sched_setaffinity(0, cpus)
    except OSError as exc:
        raise ValueError(
            f"cannot run on CPUs {text(cpus)}: {exc.strerror} (this machine has {os.cpu_count()})"
        ) from exc


def pinned(cpus: frozenset[int] | None) -> Callable[[], None] | None:
    """A `preexec_fn` for `subprocess.Popen` that pins the child before it runs anything (None: not pinned).
    It runs in the forked child, so every thread the program starts inherits the CPUs."""
    if cpus is None:
        return None
    return lambda: pin(cpus)
