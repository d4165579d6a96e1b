"""The Catalyst engagement worker (`python -m services.engagement`) as a measured subprocess."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

from bench.processes import cpu_seconds, free_port, tree_cpu_seconds

ROOT = Path(__file__).resolve().parents[1]


class WorkerProcess:
    """`count` workers in one group with the bench topics and a private Redis; each has its own ports, data
    directory and log. Two or more show how the worker scales out by partitions on one machine."""

    def __init__(
        self,
        bootstrap: str,
        topics: dict[str, str],
        redis_url: str,
        workdir: Path,
        partitions: int,
        extra_env: dict[str, str],
        count: int = 1,
    ) -> None:
        self.group = f"bench-engagement-{uuid.uuid4().hex[:8]}"
        workdir.mkdir(parents=True, exist_ok=True)
        self.metrics_ports = [free_port() for _ in range(count)]
        self.web_ports = [free_port() for _ in range(count)]
        self.log_paths = [workdir / f"worker-{i}.log" for i in range(count)]
        base = {
            **os.environ,
            "PYTHONPATH": f"{ROOT}:{ROOT / 'gen'}",
            "CATALYST_KAFKA_BOOTSTRAP": bootstrap,
            "CATALYST_REDIS_URL": redis_url,
            "CATALYST_TOPIC_INTERACTIONS": topics["interactions"],
            "CATALYST_TOPIC_ENGAGEMENT": topics["engagement"],
            "CATALYST_TOPIC_RECOGNITION": topics["recognition"],
            "CATALYST_TOPIC_DEADLETTER": topics["deadletter"],
            "CATALYST_INTERACTIONS_PARTITIONS": str(partitions),
            "CATALYST_ENGAGEMENT_GROUP_ID": self.group,
            "CATALYST_LOG_LEVEL": "WARNING",
        }
        self.envs = [
            {
                **base,
                "CATALYST_WORKER_METRICS_PORT": str(self.metrics_ports[i]),
                "CATALYST_WORKER_WEB_PORT": str(self.web_ports[i]),
                "CATALYST_WORKER_DATA_DIR": str(workdir / f"faust-{i}"),
                **extra_env,
            }
            for i in range(count)
        ]
        self.processes: list[subprocess.Popen] = []

    @property
    def count(self) -> int:
        return len(self.envs)

    @property
    def pid(self) -> int:
        """The first worker's (what py-spy records)."""
        return self.processes[0].pid

    def start(self) -> None:
        for env, path in zip(self.envs, self.log_paths, strict=True):
            log = path.open("ab")
            self.processes.append(
                subprocess.Popen(
                    [sys.executable, "-m", "services.engagement", "worker", "-l", "warning"],
                    env=env,
                    cwd=ROOT,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )

    def alive(self) -> bool:
        return bool(self.processes) and all(p.poll() is None for p in self.processes)

    def cpu(self) -> float:
        """CPU seconds of all the workers together, their publisher processes included."""
        return sum(tree_cpu_seconds(p.pid) for p in self.processes)

    def publisher_cpu(self) -> float:
        """CPU seconds of the workers' publisher processes (their descendants) alone."""
        return sum(tree_cpu_seconds(p.pid) - cpu_seconds(p.pid) for p in self.processes)

    def log_tail(self, chars: int = 3000) -> str:
        return "".join(p.read_text(errors="replace")[-chars:] for p in self.log_paths if p.exists())

    def stop(self, timeout: float = 60) -> None:
        running = [p for p in self.processes if p.poll() is None]
        for process in running:
            process.send_signal(signal.SIGTERM)
        for process in running:
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)
