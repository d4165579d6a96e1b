"""The worker's publisher process (services/engagement/publisher.py) with the real worker, broker and Redis:
its metrics reach the worker's /metrics, it is started again when it dies, and it never outlives its worker."""

from __future__ import annotations

import os
import re
import signal
import time
import urllib.request
from pathlib import Path

from catalyst.events.v1 import envelope_pb2

from bench.processes import thread_cpus
from tests.integration.engagement.harness import WorkerProcess, produce, read_all, wait_until
from tests.unit.engagement.builders import DAY, post


def children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            found += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def metric(worker: WorkerProcess, name: str) -> float:
    text = urllib.request.urlopen(f"http://127.0.0.1:{worker.metrics_port}/metrics", timeout=5).read().decode()
    match = re.search(rf"^{name} (\S+)$", text, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


def published_for(bootstrap: str, topic: str) -> set[str]:
    return {key.decode() for key, _ in read_all(bootstrap, topic)}


def posts(prefix: str, count: int) -> list[envelope_pb2.Envelope]:
    end = (int(time.time()) // DAY) * DAY - 1
    return [post(f"{prefix}-{n}", end - 3600 + n) for n in range(count)]


def test_the_publisher_reports_through_the_worker_and_is_started_again_when_it_dies(
    common_env: dict[str, str], kafka_bootstrap: str, topics: dict[str, str], redis_url: str, tmp_path: Path
) -> None:
    worker = WorkerProcess(common_env, tmp_path).start()
    try:
        assert worker.process is not None
        wait_until(lambda: len(children(worker.process.pid)) == 1, 60, "the publisher process to start")
        first = children(worker.process.pid)[0]
        produce(kafka_bootstrap, topics["interactions"], posts("a", 5))
        wait_until(
            lambda: {f"a-{n}" for n in range(5)} <= published_for(kafka_bootstrap, topics["engagement"]),
            120,
            "ScoreChanged of the first employees",
        )
        wait_until(lambda: metric(worker, "catalyst_engagement_score_changes_total") >= 5, 30, "relayed metrics")
        assert metric(worker, 'catalyst_engagement_redis_seconds_count{op="emit"}') > 0

        os.kill(first, signal.SIGKILL)
        wait_until(lambda: metric(worker, "catalyst_engagement_publisher_restarts_total") == 1, 30, "a restart")
        wait_until(lambda: [c for c in children(worker.process.pid) if c != first], 30, "a new publisher process")
        produce(kafka_bootstrap, topics["interactions"], posts("b", 5))
        wait_until(
            lambda: {f"b-{n}" for n in range(5)} <= published_for(kafka_bootstrap, topics["engagement"]),
            120,
            "ScoreChanged of the later employees",
        )
        health = urllib.request.urlopen(f"http://127.0.0.1:{worker.web_port}/health", timeout=5).read()
        assert b'"publisher": "running"' in health or b'"publisher":"running"' in health
        second = children(worker.process.pid)
    finally:
        assert worker.stop() == 0, worker.log_tail()
    assert not any(alive(pid) for pid in second)  # stopped with its worker


def test_the_publisher_does_not_outlive_a_killed_worker(
    common_env: dict[str, str], redis_url: str, tmp_path: Path
) -> None:
    worker = WorkerProcess(common_env, tmp_path).start()
    assert worker.process is not None
    wait_until(lambda: len(children(worker.process.pid)) == 1, 60, "the publisher process to start")
    publisher = children(worker.process.pid)[0]
    worker.kill()
    wait_until(lambda: not alive(publisher), 30, "the publisher to exit after its worker")


def test_a_worker_given_a_cpu_runs_there_and_its_publisher_elsewhere(
    common_env: dict[str, str], tmp_path: Path
) -> None:
    """CATALYST_WORKER_CPUS: every thread of the consumer process on that CPU, the publisher on the others (on
    a machine of one CPU there are none: it stays with the consumer)."""
    cpu = max(os.sched_getaffinity(0))
    others = frozenset(os.sched_getaffinity(0)) - {cpu} or frozenset({cpu})
    worker = WorkerProcess(common_env, tmp_path, CATALYST_WORKER_CPUS=str(cpu)).start()
    try:
        assert worker.process is not None
        wait_until(lambda: len(children(worker.process.pid)) == 1, 60, "the publisher process to start")
        publisher = children(worker.process.pid)[0]
        wait_until(lambda: thread_cpus(publisher) == {others}, 30, f"the publisher on CPUs {sorted(others)}")
        assert thread_cpus(worker.process.pid) == {frozenset({cpu})}
    finally:
        assert worker.stop() == 0, worker.log_tail()


def test_a_cpu_the_machine_does_not_have_stops_the_worker_with_a_clear_error(
    common_env: dict[str, str], tmp_path: Path
) -> None:
    worker = WorkerProcess(common_env, tmp_path, CATALYST_WORKER_CPUS="4096").start()
    assert worker.process is not None
    assert worker.process.wait(60) != 0
    assert "cannot run on CPUs 4096" in worker.log_tail()
