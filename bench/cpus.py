"""CPU affinity from a Linux CPU list ("1", "0-2,5"): how a latency-critical process gets a core of its own.

A process at ~90 % of its core waits, now and then, behind whatever else the scheduler puts on that core (Redis,
the broker, a publisher); at that load a few such waits make the tail of its latency (docs/operations.md,
"A core of its own"). Threads inherit the affinity of the thread that creates them, so a process pins itself
before it starts any.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable

_CPU_LIST = r"(\d+(-\d+)?(,\d+(-\d+)?)*)?"  # "" means any CPU; no spaces


def parse(text: str) -> frozenset[int]:
    """The CPUs of a Linux CPU list; empty for ""."""
    if not re.fullmatch(_CPU_LIST, text):
        raise ValueError(f"not a CPU list (like '1' or '0-2,5'): {text!r}")
    cpus: set[int] = set()
    for part in filter(None, text.split(",")):
        first, _, last = part.partition("-")
        low, high = int(first), int(last or first)
        if high < low:
            raise ValueError(f"CPU range {part!r} runs backwards")
        cpus.update(range(low, high + 1))
    return frozenset(cpus)


def text(cpus: Iterable[int]) -> str:
    """The CPU list of a set of CPUs, for settings and reports."""
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


def others(cpus: frozenset[int]) -> frozenset[int]:
    """Every CPU of the machine but these: where a pinned process's helpers run, off its core."""
    return frozenset(range(os.cpu_count() or 1)) - cpus
