"""Process helpers shared by the benchmarks: free ports and CPU time from /proc."""

from __future__ import annotations

import os
import socket
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid: int, children: bool = False) -> float:
    """User + system CPU time of a process (plus its reaped children's when asked), from /proc/<pid>/stat."""
    raw = Path(f"/proc/{pid}/stat").read_text()
    fields = raw[raw.rindex(")") + 2 :].split()  # the command name may contain spaces
    return sum(int(v) for v in fields[11 : 15 if children else 13]) / CLOCK_TICKS


def tree_cpu_seconds(pid: int) -> float:
    """CPU time of a process and all its descendants, running or reaped (the engagement worker's publisher
    process is its child)."""
    total = cpu_seconds(pid, children=True)
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            children = (task / "children").read_text().split()
        except OSError:  # the thread ended meanwhile
            continue
        for child in children:
            try:
                total += tree_cpu_seconds(int(child))
            except OSError:  # it ended meanwhile (its time is in the reaped children's once waited for)
                pass
    return total
