"""Running the real engagement worker as a subprocess against the test broker and Redis."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path

from catalyst.events.v1 import envelope_pb2
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition

from tests.conftest import free_port

ROOT = Path(__file__).resolve().parents[3]


def produce(bootstrap: str, topic: str, events: Iterable[envelope_pb2.Envelope]) -> int:
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    n = 0
    for env in events:
        producer.send(topic, key=env.employee_id.encode(), value=env.SerializeToString())
        n += 1
    producer.flush()
    producer.close()
    return n


def produce_raw(bootstrap: str, topic: str, records: Iterable[tuple[bytes, bytes]]) -> None:
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    for key, value in records:
        producer.send(topic, key=key, value=value)
    producer.flush()
    producer.close()


def read_all(bootstrap: str, topic: str, timeout_s: float = 5.0) -> list:
    """Every record currently on a topic (key, value)."""
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap, auto_offset_reset="earliest", enable_auto_commit=False, consumer_timeout_ms=1000
    )
    partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or []]
    consumer.assign(partitions)
    consumer.seek_to_beginning()
    end = consumer.end_offsets(partitions)
    out = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and any(consumer.position(tp) < end[tp] for tp in partitions):
        for records in consumer.poll(500).values():
            out += [(r.key, r.value) for r in records]
    consumer.close()
    return out


def wait_until(predicate: Callable[[], bool], timeout_s: float, what: str, interval: float = 0.5) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(interval)


class WorkerProcess:
    """`python -m services.engagement` with this test's topics, Redis, group, ports and data dir."""

    def __init__(self, common_env: dict[str, str], tmp_path: Path, group: str | None = None, **extra: str) -> None:
        self.group = group or f"engagement-test-{uuid.uuid4().hex[:8]}"
        self.web_port = free_port()
        self.metrics_port = free_port()
        self.log_path = tmp_path / f"worker-{uuid.uuid4().hex[:6]}.log"
        self.env = {
            **os.environ,
            **common_env,
            "PYTHONPATH": f"{ROOT}:{ROOT / 'gen'}",
            "CATALYST_ENGAGEMENT_GROUP_ID": self.group,
            "CATALYST_WORKER_WEB_PORT": str(self.web_port),
            "CATALYST_WORKER_METRICS_PORT": str(self.metrics_port),
            "CATALYST_WORKER_DATA_DIR": str(tmp_path / f"faust-{self.group}"),
            "CATALYST_WORKER_SESSION_TIMEOUT_SECONDS": "10",
            "CATALYST_WORKER_HEARTBEAT_SECONDS": "1",
            "CATALYST_WORKER_REBALANCE_TIMEOUT_SECONDS": "10",
            "CATALYST_WORKER_EMIT_INTERVAL_SECONDS": "0.2",
            "CATALYST_WORKER_LAG_INTERVAL_SECONDS": "1",
            "CATALYST_WORKER_REDIS_BACKOFF_MAX_SECONDS": "1",
            "CATALYST_LOG_LEVEL": "INFO",
            **extra,
        }
        self.process: subprocess.Popen | None = None

    def start(self) -> WorkerProcess:
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "services.engagement", "worker", "-l", "info"],
            env=self.env,
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        return self

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log_tail(self, chars: int = 4000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:] if self.log_path.exists() else ""

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(30)

    def stop(self, timeout: float = 60) -> int:
        """Graceful stop (SIGTERM); returns the exit code."""
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
                raise AssertionError("worker did not stop on SIGTERM\n" + self.log_tail()) from None
        return self.process.returncode


def committed_all(bootstrap: str, group: str, topic: str) -> bool:
    """True when the group's committed offsets reached the end of every partition of the topic."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    consumer = KafkaConsumer(bootstrap_servers=bootstrap)
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or []]
        end = consumer.end_offsets(partitions)
        try:
            committed = admin.list_group_offsets({group: None}).get(group, {})
        except Exception:
            return False
        return all(end[tp] == 0 or (tp in committed and committed[tp].offset >= end[tp]) for tp in partitions)
    finally:
        consumer.close()
        admin.close()


def reset_group(bootstrap: str, group: str, topic: str, partitions: int) -> None:
    """Sets the (stopped) group's committed offsets back to the beginning of every partition."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        result = admin.reset_group_offsets(group, {TopicPartition(topic, p): 0 for p in range(partitions)})
        assert all(r["offset"] == 0 for r in result.values()), result
    finally:
        admin.close()


def group_members(bootstrap: str, group: str) -> list[str]:
    """Client ids of the group's current members."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        described = admin.describe_groups([group])[group]
        return sorted(member["client_id"] for member in described["members"])
    finally:
        admin.close()


def groups(bootstrap: str) -> set[str]:
    """Every consumer group the broker knows."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        return {g["group_id"] for g in admin.list_groups()}
    finally:
        admin.close()
