"""CPU lists and pinning (services/common/cpus.py): how the engagement worker's consumer gets a core of its own."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from services.common import cpus
from services.engagement import publisher
from services.engagement.config import EngagementWorkerSettings

ROOT = Path(__file__).resolve().parents[2]


def test_a_cpu_list_reads_like_linux_writes_it() -> None:
    assert cpus.parse("") == frozenset()
    assert cpus.parse("3") == {3}
    assert cpus.parse("0-2,5") == {0, 1, 2, 5}
    assert cpus.text({5, 0, 1}) == "0,1,5"
    for bad in ("a", "1,,2", "-1", "3-1", "1 2"):
        with pytest.raises(ValueError):
            cpus.parse(bad)


def test_the_publisher_stays_off_the_consumers_cpus_unless_told_otherwise() -> None:
    assert EngagementWorkerSettings().consumer_cpus == frozenset()
    assert EngagementWorkerSettings().publisher_cpus == frozenset()  # nothing pinned
    pinned = EngagementWorkerSettings(worker_cpus="1")
    assert pinned.consumer_cpus == {1}
    assert pinned.publisher_cpus == frozenset(range(os.cpu_count() or 1)) - {1}
    assert EngagementWorkerSettings(worker_cpus="1", worker_publisher_cpus="0-1").publisher_cpus == {0, 1}
    with pytest.raises(ValidationError, match="runs backwards"):
        EngagementWorkerSettings(worker_cpus="3-1")


def test_pinning_restricts_the_thread_and_the_threads_it_starts() -> None:
    """In a child process, so this one keeps its CPUs."""
    cpu = max(os.sched_getaffinity(0))
    code = (
        "import os, threading; from services.common import cpus; "
        f"cpus.pin(frozenset({{{cpu}}})); seen = []; "
        "t = threading.Thread(target=lambda: seen.append(os.sched_getaffinity(0))); t.start(); t.join(); "
        "print(sorted(os.sched_getaffinity(0)), sorted(seen[0]))"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [f"[{cpu}]", f"[{cpu}]"]


def test_pinning_to_cpus_the_machine_does_not_have_is_an_error() -> None:
    with pytest.raises(ValueError, match="cannot run on CPUs 4096"):
        cpus.pin(frozenset({4096}))


def test_the_publisher_stays_with_the_consumer_when_no_other_cpu_is_usable(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A container limited to the consumer's core: the default (every other CPU) cannot be used; CPUs set
    explicitly must be."""

    def refuse(wanted: frozenset[int]) -> None:
        raise ValueError(f"cannot run on CPUs {cpus.text(wanted)}")

    monkeypatch.setattr(cpus, "pin", refuse)
    with caplog.at_level("WARNING"):
        publisher.pin(EngagementWorkerSettings(worker_cpus="1"))
    assert "shares the consumer's CPUs" in caplog.text
    with pytest.raises(ValueError, match="cannot run on CPUs 0"):
        publisher.pin(EngagementWorkerSettings(worker_cpus="1", worker_publisher_cpus="0"))
    publisher.pin(EngagementWorkerSettings())  # nothing to pin: nothing tried
