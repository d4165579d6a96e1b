"""CPU lists and pinning (bench/cpus.py): how the benchmark gives the engagement worker a core of its own."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench import cpus
from bench.processes import thread_cpus

ROOT = Path(__file__).resolve().parents[2]


def test_a_cpu_list_reads_like_linux_writes_it() -> None:
    assert cpus.text({5, 0, 1}) == "0,1,5"
    assert cpus.text(frozenset()) == ""


def test_pinning_restricts_the_thread_and_the_threads_it_starts() -> None:
    """In a child process, so this one keeps its CPUs."""
    cpu = max(os.sched_getaffinity(0))
    code = (
        "import os, threading; from bench import cpus; "
        f"cpus.pin(frozenset({{{cpu}}})); seen = []; "
        "t = threading.Thread(target=lambda: seen.append(os.sched_getaffinity(0))); t.start(); t.join(); "
        "print(sorted(os.sched_getaffinity(0)), sorted(seen[0]))"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [f"[{cpu}]", f"[{cpu}]"]


def test_a_child_started_pinned_runs_every_thread_there() -> None:
    """`pinned` as Popen's preexec_fn: the program's threads, started after exec, inherit the CPU."""
    cpu = max(os.sched_getaffinity(0))
    code = (
        "import threading, time; threading.Thread(target=time.sleep, args=(60,), daemon=True).start(); time.sleep(60)"
    )
    child = subprocess.Popen([sys.executable, "-c", code], preexec_fn=cpus.pinned(frozenset({cpu})))
    try:
        deadline = time.monotonic() + 30
        while len(os.listdir(f"/proc/{child.pid}/task")) < 2:  # the thread it starts after exec
            assert time.monotonic() < deadline, "the child never started its thread"
            time.sleep(0.05)
        assert thread_cpus(child.pid) == {frozenset({cpu})}
    finally:
        child.kill()
        child.wait()
    assert cpus.pinned(None) is None


def test_pinning_to_cpus_the_machine_does_not_have_is_an_error() -> None:
    with pytest.raises(ValueError, match="cannot run on CPUs 4096"):
        cpus.pin(frozenset({4096}))
