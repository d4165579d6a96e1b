"""The Catalyst engagement worker (`python -m services.engagement`) as a measured subprocess."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

from bench.redis_instance import free_port

ROOT = Path(__file__).resolve().parents[1]
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, from /proc/<pid>/stat (fields 14 and 15)."""
    raw = Path(f"/proc/{pid}/stat").read_text()
    fields = raw[raw.rindex(")") + 2 :].split()  # the command name may contain spaces
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


class WorkerProcess:
    """One worker with the bench topics, a private Redis, its own group, ports and data directory."""

    def __init__(
        self,
        bootstrap: str,
        topics: dict[str, str],
        redis_url: str,
        workdir: Path,
        partitions: int,
        extra_env: dict[str, str],
    ) -> None:
        self.group = f"bench-engagement-{uuid.uuid4().hex[:8]}"
        self.metrics_port = free_port()
        self.web_port = free_port()
        self.log_path = workdir / "worker.log"
        workdir.mkdir(parents=True, exist_ok=True)
        self.env = {
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
            "CATALYST_WORKER_METRICS_PORT": str(self.metrics_port),
            "CATALYST_WORKER_WEB_PORT": str(self.web_port),
            "CATALYST_WORKER_DATA_DIR": str(workdir / "faust"),
            "CATALYST_LOG_LEVEL": "WARNING",
            **extra_env,
        }
        self.process: subprocess.Popen | None = None

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self) -> None:
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "services.engagement", "worker", "-l", "warning"],
            env=self.env,
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def cpu(self) -> float:
        return cpu_seconds(self.pid)

    def log_tail(self, chars: int = 3000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:] if self.log_path.exists() else ""

    def stop(self, timeout: float = 60) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)
