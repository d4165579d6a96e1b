"""The engagement service as measured subprocesses: the worker (`python -m services.engagement.worker`) and the
ScoreChanged publisher (`python -m services.engagement.publisher`), on the bench topics and a private Redis."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

from bench.cpus import pinned, text
from bench.processes import cpu_seconds, free_port, thread_cpus

ROOT = Path(__file__).resolve().parents[1]
WORKER = [sys.executable, "-m", "services.engagement.worker", "worker", "-l", "warning"]
PUBLISHER = [sys.executable, "-m", "services.engagement.publisher"]


class WorkerProcess:
    """`count` workers in one group and one publisher, with the bench topics and a private Redis; each worker
    has its own ports, data directory and log. Two or more workers show how the worker scales out by partitions
    on one machine. With `worker_cpus` the workers run on those CPUs and the publisher on `publisher_cpus`."""

    def __init__(
        self,
        bootstrap: str,
        topics: dict[str, str],
        redis_url: str,
        workdir: Path,
        extra_env: dict[str, str],
        count: int = 1,
        worker_cpus: frozenset[int] | None = None,
        publisher_cpus: frozenset[int] | None = None,
    ) -> None:
        self.group = f"bench-engagement-{uuid.uuid4().hex[:8]}"
        workdir.mkdir(parents=True, exist_ok=True)
        self.metrics_ports = [free_port() for _ in range(count)]
        self.web_ports = [free_port() for _ in range(count)]
        self.publisher_metrics_port = free_port()
        self.log_paths = [workdir / f"worker-{i}.log" for i in range(count)]
        self.publisher_log_path = workdir / "publisher.log"
        self.worker_cpus, self.publisher_cpus = worker_cpus, publisher_cpus
        self.base_env = {
            **os.environ,
            "PYTHONPATH": f"{ROOT}:{ROOT / 'gen'}",
            "CATALYST_KAFKA_BOOTSTRAP": bootstrap,
            "CATALYST_REDIS_URL": redis_url,
            "CATALYST_TOPIC_INTERACTIONS": topics["interactions"],
            "CATALYST_TOPIC_ENGAGEMENT": topics["engagement"],
            "CATALYST_TOPIC_RECOGNITION": topics["recognition"],
            "CATALYST_TOPIC_DEADLETTER": topics["deadletter"],
            "CATALYST_ENGAGEMENT_GROUP_ID": self.group,
            "CATALYST_LOG_LEVEL": "WARNING",
        }
        self.envs = [
            {
                **self.base_env,
                "CATALYST_WORKER_METRICS_PORT": str(self.metrics_ports[i]),
                "CATALYST_WORKER_WEB_PORT": str(self.web_ports[i]),
                "CATALYST_WORKER_DATA_DIR": str(workdir / f"faust-{i}"),
                **extra_env,
            }
            for i in range(count)
        ]
        self.publisher_env = {
            **self.base_env,
            "CATALYST_PUBLISHER_METRICS_PORT": str(self.publisher_metrics_port),
            **extra_env,
        }
        self.processes: list[subprocess.Popen] = []
        self.publisher: subprocess.Popen | None = None

    @property
    def count(self) -> int:
        return len(self.envs)

    @property
    def pid(self) -> int:
        """The first worker's (what py-spy records)."""
        return self.processes[0].pid

    @property
    def all_metrics_ports(self) -> list[int]:
        """The workers' and the publisher's: their metric names do not overlap."""
        return [*self.metrics_ports, self.publisher_metrics_port]

    def start(self) -> None:
        self.start_workers()
        self.start_publisher()

    def start_workers(self) -> None:
        """The workers alone: a benchmark that measures the publisher by itself starts it once they are done."""
        for env, path in zip(self.envs, self.log_paths, strict=True):
            self.processes.append(_spawn(WORKER, env, path, self.worker_cpus))

    def start_publisher(self) -> None:
        self.publisher = _spawn(PUBLISHER, self.publisher_env, self.publisher_log_path, self.publisher_cpus)

    def alive(self) -> bool:
        """Every program started so far is running (False before any started)."""
        started = [p for p in [*self.processes, self.publisher] if p is not None]
        return bool(started) and all(p.poll() is None for p in started)

    def cpu(self) -> float:
        """CPU seconds of the workers and the publisher together."""
        return self.worker_cpu() + self.publisher_cpu()

    def worker_cpu(self) -> float:
        """CPU seconds of the worker processes alone."""
        return sum(cpu_seconds(p.pid) for p in self.processes)

    def publisher_cpu(self) -> float:
        """CPU seconds of the publisher process alone."""
        return cpu_seconds(self.publisher.pid) if self.publisher else 0.0

    def affinity(self) -> dict[str, str]:
        """The CPUs the threads of the workers and of the publisher may run on now: the pinning as it took."""
        workers = frozenset[int]().union(*(cpus for p in self.processes for cpus in thread_cpus(p.pid)))
        publisher = frozenset[int]().union(*thread_cpus(self.publisher.pid)) if self.publisher else frozenset()
        return {"worker_threads": text(workers), "publisher_threads": text(publisher)}

    def log_tail(self, chars: int = 3000) -> str:
        paths = [*self.log_paths, self.publisher_log_path]
        return "".join(f"--- {p.name}\n{p.read_text(errors='replace')[-chars:]}" for p in paths if p.exists())

    def stop(self, timeout: float = 60) -> None:
        running = [p for p in [*self.processes, self.publisher] if p is not None and p.poll() is None]
        for process in running:
            process.send_signal(signal.SIGTERM)
        for process in running:
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)


def _spawn(args: list[str], env: dict[str, str], log_path: Path, cpus: frozenset[int] | None) -> subprocess.Popen:
    """One program with its output in its log, pinned to `cpus` from its first instruction on."""
    with log_path.open("ab") as log:
        return subprocess.Popen(args, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, preexec_fn=pinned(cpus))
