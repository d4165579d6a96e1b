"""The whole of Catalyst as real processes (`python -m ...`, exactly as operators start it) on free loopback
ports, against one set of unique topics and one Redis: what the third-party clients and Prometheus talk to."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import redis
from catalyst.feed.v1 import feed_pb2, feed_pb2_grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from services.common.auth import Role
from services.common.grpc_client import bearer
from services.common.kafka_admin import delete_topics, ensure_topics
from services.common.topics import TopicSpec, load_topics
from services.engagement.model.config import DEFAULT_SCORING_FILE
from tests.conftest import free_port, trusted_issuer

ROOT = Path(__file__).resolve().parents[3]
# Rules pinned for tests (creator bronze = 3 posts), independent of the tuned deploy/config file.
MECHANICS_RULES = ROOT / "tests" / "integration" / "mechanics_badges.yaml"


@dataclass
class Process:
    """One Catalyst process with its log file; `ready` says how to tell it is serving."""

    name: str
    args: list[str]
    env: dict[str, str]
    log_path: Path
    ready: tuple[str, int]  # ("grpc", port): gRPC health; ("health", port): faust /health; ("metrics", port)
    popen: subprocess.Popen | None = None

    def start(self) -> None:
        log = self.log_path.open("ab")
        self.popen = subprocess.Popen([sys.executable, *self.args], cwd=ROOT, env=self.env, stdout=log, stderr=log)
        log.close()

    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def wait_ready(self, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        kind, port = self.ready
        while not self._answers(kind, port):
            if not self.running():
                raise AssertionError(f"{self.name} exited; log:\n{self.log_tail()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.name} not ready on port {port}; log:\n{self.log_tail()}")
            time.sleep(0.3)

    @staticmethod
    def _answers(kind: str, port: int) -> bool:
        try:
            if kind == "grpc":
                with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
                    reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=2)
                    return reply.status == health_pb2.HealthCheckResponse.SERVING
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/{kind}", timeout=5) as response:
                return kind == "metrics" or b'"ok"' in response.read()
        except (grpc.RpcError, OSError):
            return False

    def stop(self, timeout: float = 60) -> None:
        if not self.running():
            return
        assert self.popen is not None
        self.popen.send_signal(signal.SIGTERM)
        try:
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait(10)

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


@dataclass
class CatalystSystem:
    """feed, engagement worker, publisher and API, recognition and the Kafka lag exporter."""

    bootstrap: str
    redis_url: str
    topics: dict[str, str]
    run_dir: Path
    suffix: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    badge_rules: Path = field(default_factory=lambda: MECHANICS_RULES)
    scoring: Path = DEFAULT_SCORING_FILE
    ports: dict[str, int] = field(default_factory=dict)
    processes: dict[str, Process] = field(default_factory=dict)

    def __post_init__(self) -> None:
        names = ["feed", "feed_metrics", "relay_metrics", "api", "api_metrics", "worker_metrics", "worker_web"]
        names += ["publisher_metrics"]
        names += ["recognition", "recognition_metrics", "lag_metrics"]
        self.ports = {name: free_port() for name in names}
        self.engagement_group = f"catalyst-engagement-{self.suffix}"
        self.recognition_group = f"catalyst-recognition-{self.suffix}"
        common = {
            **os.environ,
            "PYTHONPATH": f"{ROOT}:{ROOT / 'gen'}",
            "CATALYST_KAFKA_BOOTSTRAP": self.bootstrap,
            "CATALYST_REDIS_URL": self.redis_url,
            "CATALYST_TOPIC_INTERACTIONS": self.topics["interactions"],
            "CATALYST_TOPIC_ENGAGEMENT": self.topics["engagement"],
            "CATALYST_TOPIC_RECOGNITION": self.topics["recognition"],
            "CATALYST_TOPIC_DEADLETTER": self.topics["deadletter"],
            "CATALYST_TOPIC_AUDIT": self.topics["audit"],
            "CATALYST_GRPC_HOST": "127.0.0.1",
            "CATALYST_METRICS_HOST": "127.0.0.1",
            "CATALYST_SHUTDOWN_GRACE_SECONDS": "2",
            "CATALYST_LOG_LEVEL": "INFO",
            "CATALYST_BADGE_RULES_FILE": str(self.badge_rules),
            "CATALYST_SCORING_FILE": str(self.scoring),
        }
        p = self.ports
        specs = {
            "feed": (
                ["-m", "services.feed"],
                ("grpc", p["feed"]),
                {"GRPC_PORT": p["feed"], "METRICS_PORT": p["feed_metrics"], "RELAY_ENABLED": "false"},
            ),
            "feed-relay": (  # its own process, as in production (decision 0026)
                ["-m", "services.feed.relay"],
                ("metrics", p["relay_metrics"]),
                {"RELAY_METRICS_PORT": p["relay_metrics"]},
            ),
            "engagement-worker": (
                ["-m", "services.engagement.worker"],
                ("health", p["worker_web"]),
                {
                    "ENGAGEMENT_GROUP_ID": self.engagement_group,
                    "WORKER_METRICS_PORT": p["worker_metrics"],
                    "WORKER_WEB_PORT": p["worker_web"],
                    "WORKER_DATA_DIR": self.run_dir / f"faust-{self.suffix}",
                    "WORKER_LAG_INTERVAL_SECONDS": 1,
                    "WORKER_SESSION_TIMEOUT_SECONDS": 10,
                    "WORKER_HEARTBEAT_SECONDS": 1,
                    "WORKER_REBALANCE_TIMEOUT_SECONDS": 10,
                },
            ),
            "engagement-publisher": (
                ["-m", "services.engagement.publisher"],
                ("metrics", p["publisher_metrics"]),
                {
                    "PUBLISHER_METRICS_PORT": p["publisher_metrics"],
                    "PUBLISHER_INTERVAL_SECONDS": 0.2,
                },
            ),
            "engagement-api": (
                ["-m", "services.engagement.api"],
                ("grpc", p["api"]),
                {"GRPC_PORT": p["api"], "METRICS_PORT": p["api_metrics"]},
            ),
            "recognition": (
                ["-m", "services.recognition"],
                ("grpc", p["recognition"]),
                {
                    "GRPC_PORT": p["recognition"],
                    "METRICS_PORT": p["recognition_metrics"],
                    "RECOGNITION_GROUP_ID": self.recognition_group,
                },
            ),
            "kafka-lag-exporter": (
                [str(ROOT / "deploy/prometheus/kafka_lag_exporter.py")],
                ("metrics", p["lag_metrics"]),
                {
                    "LAG_METRICS_PORT": p["lag_metrics"],
                    "ENGAGEMENT_GROUP_ID": self.engagement_group,
                    "RECOGNITION_GROUP_ID": self.recognition_group,
                },
            ),
        }
        for name, (args, ready, extra) in specs.items():
            env = {**common, **{f"CATALYST_{k}": str(v) for k, v in extra.items()}}
            self.processes[name] = Process(name, args, env, self.run_dir / f"{name}.log", ready)

    @property
    def metrics_targets(self) -> dict[str, str]:
        """Prometheus job name -> 127.0.0.1:<metrics port>, the same job names as deploy/prometheus."""
        p = self.ports
        return {
            "feed": f"127.0.0.1:{p['feed_metrics']}",
            "feed-relay": f"127.0.0.1:{p['relay_metrics']}",
            "engagement-api": f"127.0.0.1:{p['api_metrics']}",
            "engagement-worker": f"127.0.0.1:{p['worker_metrics']}",
            "engagement-publisher": f"127.0.0.1:{p['publisher_metrics']}",
            "recognition": f"127.0.0.1:{p['recognition_metrics']}",
            "kafka-lag-exporter": f"127.0.0.1:{p['lag_metrics']}",
        }

    def grpc_target(self, service: str) -> str:
        return f"127.0.0.1:{self.ports[{'feed': 'feed', 'engagement': 'api', 'recognition': 'recognition'}[service]]}"

    def start(self) -> CatalystSystem:
        for process in self.processes.values():
            process.start()
        for process in self.processes.values():
            process.wait_ready()
        return self

    def stop(self) -> None:
        for process in self.processes.values():
            process.stop()

    def token(self, subject: str, *roles: Role) -> str:
        return trusted_issuer().mint(subject, list(roles) or [Role.EMPLOYEE], 3600)

    def register(self, *employee_ids: str, department: str = "d-ops") -> None:
        """Directory import as comms/HR would do it: feed accepts writes only from known employees."""
        employees = [feed_pb2.Employee(employee_id=e, display_name=e, department_id=department) for e in employee_ids]
        with grpc.insecure_channel(self.grpc_target("feed")) as channel:
            feed_pb2_grpc.FeedServiceStub(channel).UpsertEmployees(
                feed_pb2.UpsertEmployeesRequest(employees=employees),
                metadata=bearer(self.token("hr-ops", Role.HR)),
                timeout=30,
            )

    def logs(self) -> str:
        return "\n".join(f"== {p.name}\n{p.log_tail()}" for p in self.processes.values())


def running_system(
    bootstrap: str, redis_port: int, run_dir: Path, badge_rules: Path | None = None, scoring: Path | None = None
) -> Iterator[CatalystSystem]:
    """Generator for a module-scoped fixture: own topics (unique names), an emptied Redis, all processes (with
    the mechanics rules unless `badge_rules` names others, and the shipped scoring file unless `scoring` does)."""
    suffix = uuid.uuid4().hex[:8]
    specs = [TopicSpec(s.key, f"{s.name}.ops-{suffix}", s.partitions, s.config) for s in load_topics().values()]
    ensure_topics(bootstrap, specs)
    redis.Redis(port=redis_port).flushall()
    run_dir.mkdir(parents=True, exist_ok=True)
    system = CatalystSystem(
        bootstrap,
        f"redis://127.0.0.1:{redis_port}/0",
        {s.key: s.name for s in specs},
        run_dir,
        badge_rules=badge_rules or MECHANICS_RULES,
        scoring=scoring or DEFAULT_SCORING_FILE,
    )
    try:
        system.start()
        yield system
    finally:
        system.stop()
        try:
            delete_topics(bootstrap, [s.name for s in specs])
        except Exception:
            pass
