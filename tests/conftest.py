"""Shared fixtures: a real Kafka broker (shared, topics unique per test) and a private redis-server.

When CI is set, a missing broker or redis-server fails the run instead of skipping it.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import jwt
import pytest
import redis
from jwt import PyJWK
from prometheus_client import CollectorRegistry

from services.common.auth import Principal, TokenVerifier
from services.common.errors import Unauthenticated
from services.common.kafka_admin import broker_ready, delete_topics, ensure_topics
from services.common.local_issuer import LocalIssuer
from services.common.topics import TopicSpec, load_topics
from services.issuer.server import serve

IN_CI = bool(os.environ.get("CI"))
ROOT = Path(__file__).resolve().parents[1]


def unavailable(what: str) -> None:
    """Fails in CI, skips on a developer machine without the runtime."""
    message = f"{what} is not available (start it with `make runtime-up`)"
    if IN_CI:
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


_HANDED_OUT: set[int] = set()


def free_port() -> int:
    """A port free now and never handed out before in this run: gRPC servers bind with SO_REUSEPORT, so two
    servers given the same port (two processes of one system, or one left from an earlier module) would share
    its connections, and calls would reach the wrong service."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in _HANDED_OUT:
            _HANDED_OUT.add(port)
            return port


_ISSUER: list[LocalIssuer] = []


def trusted_issuer() -> LocalIssuer:
    """The local issuer every test mints with: its JWKS served on a free port (once per session) and named in
    CATALYST_OIDC_ISSUER, so every service of the session, in-process or a child process, trusts it."""
    if not _ISSUER:
        port = free_port()
        keys = Path(tempfile.mkdtemp(prefix="catalyst-test-issuer-"))
        issuer = LocalIssuer(keys, f"http://127.0.0.1:{port}", "catalyst")
        issuer.ensure_key()
        serve(issuer, "127.0.0.1", port, CollectorRegistry())
        os.environ["CATALYST_OIDC_ISSUER"] = issuer.issuer
        os.environ["CATALYST_LOCAL_ISSUER_DIR"] = str(keys)
        _ISSUER.append(issuer)
    return _ISSUER[0]


class IssuerKeys:
    """The test issuer's keys without HTTP: a fake KeySource for unit tests."""

    def __init__(self, issuer: LocalIssuer) -> None:
        self._issuer = issuer

    def cached(self, kid: str) -> PyJWK | None:
        return next((PyJWK(k) for k in self._issuer.jwks()["keys"] if k["kid"] == kid), None)

    def fetch(self, kid: str) -> PyJWK:
        key = self.cached(kid)
        if key is None:
            raise Unauthenticated(f"unknown key {kid!r}")
        return key


def verify(token: str) -> Principal:
    """The caller a service would see for this token of the test issuer."""
    issuer = trusted_issuer()
    verifier = TokenVerifier(issuer.issuer, issuer.audience, IssuerKeys(issuer), issuer.roles_claim, 0)
    return verifier.verify(token, IssuerKeys(issuer).fetch(jwt.get_unverified_header(token)["kid"]))


@pytest.fixture(scope="session", autouse=True)
def _trusted_issuer() -> LocalIssuer:
    """Started before any test builds settings."""
    return trusted_issuer()


@pytest.fixture(scope="session")
def kafka_bootstrap() -> str:
    bootstrap = os.environ.get("CATALYST_KAFKA_BOOTSTRAP", "127.0.0.1:9092")
    if not broker_ready(bootstrap):
        unavailable(f"Kafka broker at {bootstrap}")
    return bootstrap


@dataclass
class RedisServer:
    port: int
    process: subprocess.Popen

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)

    def start(self) -> None:
        """Restarts after stop() on the same port and data directory."""
        self.process = subprocess.Popen(self.process.args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for_redis(self.port)


def wait_for_redis(port: int) -> None:
    client = redis.Redis(port=port)
    deadline = time.monotonic() + 10
    while True:
        try:
            client.ping()
            return
        except redis.ConnectionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A private redis-server per test session, so parallel sessions never share state."""
    binary = shutil.which("redis-server")
    if binary is None:
        unavailable("redis-server")
    port = free_port()
    data = tmp_path_factory.mktemp("redis")
    args = [
        binary,
        str(ROOT / "deploy" / "redis" / "catalyst.conf"),
        "--bind",
        "127.0.0.1",
        "--port",
        str(port),
        "--dir",
        str(data),
        "--appendonly",
        "yes",
        "--save",
        "",
    ]
    server = RedisServer(port, subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    wait_for_redis(port)
    yield server
    server.process.terminate()
    server.process.wait(10)


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """A URL to an empty Redis database for this test."""
    redis.Redis(port=redis_server.port).flushall()
    return redis_server.url()


@pytest.fixture
def topics(kafka_bootstrap: str) -> Iterator[dict[str, str]]:
    """This test's own copies of the declared topics (same partitions and config, unique names)."""
    suffix = uuid.uuid4().hex[:8]
    specs = [TopicSpec(s.key, f"{s.name}.test-{suffix}", s.partitions, s.config) for s in load_topics().values()]
    ensure_topics(kafka_bootstrap, specs)
    yield {s.key: s.name for s in specs}
    try:
        delete_topics(kafka_bootstrap, [s.name for s in specs])
    except Exception:
        pass


@pytest.fixture
def common_env(kafka_bootstrap: str, redis_url: str, topics: dict[str, str]) -> dict[str, str]:
    """Environment variables that point a service at this test's broker topics and Redis."""
    return {
        "CATALYST_KAFKA_BOOTSTRAP": kafka_bootstrap,
        "CATALYST_REDIS_URL": redis_url,
        "CATALYST_TOPIC_INTERACTIONS": topics["interactions"],
        "CATALYST_TOPIC_ENGAGEMENT": topics["engagement"],
        "CATALYST_TOPIC_RECOGNITION": topics["recognition"],
        "CATALYST_TOPIC_DEADLETTER": topics["deadletter"],
        "CATALYST_TOPIC_AUDIT": topics["audit"],
    }


@dataclass
class PrivateKafka:
    """A broker of this test's own, on free ports, that the test may stop and start."""

    run_dir: Path
    port: int
    controller_port: int

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _script(self, command: str) -> None:
        env = {
            **os.environ,
            "CATALYST_RUN_DIR": str(self.run_dir),
            "KAFKA_PORT": str(self.port),
            "KAFKA_CONTROLLER_PORT": str(self.controller_port),
            "KAFKA_HEAP": "512m",
            "PYTHON": sys.executable,
        }
        subprocess.run(["bash", str(ROOT / "deploy/kafka/kafka.sh"), command], env=env, check=True)

    def start(self) -> None:
        self._script("start")

    def stop(self) -> None:
        self._script("stop")


@pytest.fixture
def private_kafka(kafka_bootstrap: str, tmp_path: Path) -> Iterator[PrivateKafka]:
    """Needs the shared broker only to prove the jars and Java work; starts a second, private one."""
    broker = PrivateKafka(tmp_path / "run", free_port(), free_port())
    broker.start()
    ensure_topics(broker.bootstrap, load_topics().values())
    yield broker
    broker.stop()
