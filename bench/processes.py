"""Process helpers shared by the benchmarks: free ports, CPU time from /proc, CPU affinity of other processes."""

from __future__ import annotations

import os
import socket
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _stat_cpu_seconds(stat: str, children: bool = False) -> float:
    """User + system CPU time in a /proc `stat` line (plus the reaped children's when asked)."""
    fields = stat[stat.rindex(")") + 2 :].split()  # the command name may contain spaces
    return sum(int(v) for v in fields[11 : 15 if children else 13]) / CLOCK_TICKS


def cpu_seconds(pid: int, children: bool = False) -> float:
    """User + system CPU time of a process (plus its reaped children's when asked), from /proc/<pid>/stat."""
    return _stat_cpu_seconds(Path(f"/proc/{pid}/stat").read_text(), children)


def threads_cpu_seconds(pid: int, name_prefixes: tuple[str, ...]) -> float:
    """User + system CPU time of the process's threads whose name starts with one of `name_prefixes` (Linux
    keeps a thread's first 15 characters: HotSpot's "C2 CompilerThread0" is "C2 CompilerThre")."""
    total = 0.0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            raw = (task / "stat").read_text()
        except OSError:  # the thread ended meanwhile
            continue
        if raw[raw.index("(") + 1 : raw.rindex(")")].startswith(name_prefixes):
            total += _stat_cpu_seconds(raw)
    return total


def _thread_ids(pid: int) -> list[int]:
    return [int(task.name) for task in Path(f"/proc/{pid}/task").iterdir()]


def pin_threads(pid: int, cpus: frozenset[int]) -> dict[int, frozenset[int]]:
    """Restricts every thread of a running process (the broker, a Redis) to `cpus`; returns each thread's
    affinity before, for `unpin_threads`. Threads it starts later inherit from their creator."""
    before: dict[int, frozenset[int]] = {}
    for tid in _thread_ids(pid):
        try:
            before[tid] = frozenset(os.sched_getaffinity(tid))
            os.sched_setaffinity(tid, cpus)
        except ProcessLookupError:  # the thread ended meanwhile
            continue
    return before


def unpin_threads(pid: int, before: dict[int, frozenset[int]]) -> None:
    """Gives a process's threads back the affinity they had (one started since gets what its siblings had)."""
    everything = frozenset().union(*before.values())
    try:
        tids = _thread_ids(pid)
    except FileNotFoundError:  # the process ended
        return
    for tid in tids:
        try:
            os.sched_setaffinity(tid, before.get(tid, everything))
        except ProcessLookupError:
            continue


def thread_cpus(pid: int) -> set[frozenset[int]]:
    """The distinct CPU sets of a process's threads (one set when they all run on the same CPUs)."""
    found: set[frozenset[int]] = set()
    for tid in _thread_ids(pid):
        try:
            found.add(frozenset(os.sched_getaffinity(tid)))
        except ProcessLookupError:  # the thread ended meanwhile
            continue
    return found
