"""A private redis-server for one benchmark run, so its memory figures belong to the benchmark alone."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import redis

from bench.processes import free_port

CONF = (
    Path(__file__).resolve().parents[1] / "deploy" / "redis" / "catalyst.conf"
)  # the settings every Catalyst Redis uses


class RedisInstance:
    def __init__(self, workdir: Path) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise SystemExit("redis-server is not installed (make system-deps)")
        self.port = free_port()
        workdir.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [binary, str(CONF), "--bind", "127.0.0.1", "--port", str(self.port), "--dir", str(workdir)]
            + ["--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.client = redis.Redis(port=self.port)
        deadline = time.monotonic() + 10
        while True:
            try:
                self.client.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def used_memory(self) -> int:
        return int(self.client.info("memory")["used_memory"])

    def command_stats(self) -> dict[str, tuple[int, int]]:
        """(calls, µs) per command so far; commands a script runs count under their own name as well."""
        rows = self.client.info("commandstats").items()
        return {name.removeprefix("cmdstat_"): (int(row["calls"]), int(row["usec"])) for name, row in rows}

    def count(self, pattern: str) -> int:
        return sum(1 for _ in self.client.scan_iter(match=pattern, count=5000))

    def stop(self) -> None:
        self.client.close()
        self.process.terminate()
        self.process.wait(10)
