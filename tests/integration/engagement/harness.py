"""The real engagement programs as subprocesses against the test broker and Redis, and what the tests hold
them to: `expected_states` (tests/unit/engagement/fakes.py) of the records really on the topic, turned into
the model's figures as of one event-time day."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import redis.asyncio as aioredis
from catalyst.events.v1 import envelope_pb2
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from prometheus_client.parser import text_string_to_metric_families

from services.engagement.adapters.redis_store import RedisStore
from services.engagement.model.config import load_model
from services.engagement.model.figures import figures
from services.engagement.model.state import DAY_MS, State
from services.engagement.worker.handler import Record
from tests.conftest import free_port
from tests.unit.engagement.fakes import MARKER_TTL, PSEUDONYM_KEY, expected_states

ROOT = Path(__file__).resolve().parents[3]
MODEL = load_model()
Flat = dict[str, float]


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


def topic_records(bootstrap: str, topic: str, timeout_s: float = 30.0) -> list[Record]:
    """Every record on a topic, with its partition and offset, as the worker's consumer hands them out."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, auto_offset_reset="earliest", enable_auto_commit=False)
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or []]
        consumer.assign(partitions)
        consumer.seek_to_beginning()
        end = consumer.end_offsets(partitions)
        out: list[Record] = []
        deadline = time.monotonic() + timeout_s
        while any(consumer.position(tp) < end[tp] for tp in partitions):
            assert time.monotonic() < deadline, f"could not read {topic} to its end"
            for records in consumer.poll(500).values():
                out += [Record(r.partition, r.offset, r.key, r.value, r.timestamp) for r in records]
        return sorted(out, key=lambda r: (r.partition, r.offset))
    finally:
        consumer.close()


def read_all(bootstrap: str, topic: str) -> list[tuple[bytes | None, bytes | None]]:
    """(key, value) of every record on a topic, each partition in order."""
    return [(r.key, r.value) for r in topic_records(bootstrap, topic)]


def wait_until(predicate: Callable[[], bool], timeout_s: float, what: str, interval: float = 0.5) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(interval)


def metric(port: int, name: str, **labels: str) -> float:
    """A sample of a process's /metrics (0 when absent)."""
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return sample.value
    return 0.0


class Program:
    """One engagement program (`python -m <module>`) with this test's topics, Redis and ports; its log goes
    to a file the assertions print."""

    module = ""

    def __init__(self, common_env: dict[str, str], tmp_path: Path, **extra: str) -> None:
        self.metrics_port = free_port()
        self.log_path = tmp_path / f"{self.module.rsplit('.', 1)[-1]}-{uuid.uuid4().hex[:6]}.log"
        self.env = {
            **os.environ,
            **common_env,
            "PYTHONPATH": f"{ROOT}:{ROOT / 'gen'}",
            "CATALYST_METRICS_HOST": "127.0.0.1",
            "CATALYST_LOG_LEVEL": "INFO",
            **self.settings(tmp_path),
            **extra,
        }
        self.process: subprocess.Popen | None = None

    def settings(self, tmp_path: Path) -> dict[str, str]:
        return {}

    def start(self) -> Program:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", self.module], env=self.env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT
            )
        return self

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log_tail(self, chars: int = 4000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:] if self.log_path.exists() else ""

    def metric(self, name: str, **labels: str) -> float:
        assert self.alive(), self.log_tail()
        return metric(self.metrics_port, name, **labels)

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
                raise AssertionError(f"{self.module} did not stop on SIGTERM\n{self.log_tail()}") from None
        return self.process.returncode


class WorkerProcess(Program):
    """`python -m services.engagement.worker`, in a consumer group of this test's own (or the one given)."""

    module = "services.engagement.worker"

    def __init__(self, common_env: dict[str, str], tmp_path: Path, group: str | None = None, **extra: str) -> None:
        self.group = group or f"engagement-test-{uuid.uuid4().hex[:8]}"
        self.web_port = free_port()
        super().__init__(common_env, tmp_path, **extra)

    def settings(self, tmp_path: Path) -> dict[str, str]:
        return {
            "CATALYST_ENGAGEMENT_GROUP_ID": self.group,
            "CATALYST_WORKER_WEB_PORT": str(self.web_port),
            "CATALYST_WORKER_METRICS_PORT": str(self.metrics_port),
            "CATALYST_WORKER_DATA_DIR": str(tmp_path / f"faust-{self.group}"),
            "CATALYST_WORKER_SESSION_TIMEOUT_SECONDS": "10",
            "CATALYST_WORKER_HEARTBEAT_SECONDS": "1",
            "CATALYST_WORKER_REBALANCE_TIMEOUT_SECONDS": "10",
            "CATALYST_WORKER_LAG_INTERVAL_SECONDS": "1",
            "CATALYST_WORKER_REDIS_BACKOFF_MAX_SECONDS": "1",
        }

    def health(self) -> bytes:
        return urllib.request.urlopen(f"http://127.0.0.1:{self.web_port}/health", timeout=5).read()


class PublisherProcess(Program):
    """`python -m services.engagement.publisher`: a round every 0.2 s, and a day rollover whenever event time
    crossed a day (the production default waits a minute between rollovers)."""

    module = "services.engagement.publisher"

    def settings(self, tmp_path: Path) -> dict[str, str]:
        return {
            "CATALYST_PUBLISHER_METRICS_PORT": str(self.metrics_port),
            "CATALYST_PUBLISHER_INTERVAL_SECONDS": "0.2",
            "CATALYST_PUBLISHER_REDIS_BACKOFF_MAX_SECONDS": "1",
        }


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


def wait_committed(worker: WorkerProcess, bootstrap: str, topic: str, timeout: float = 180) -> None:
    """Every record on the topic was applied: the worker commits an offset only after its batch's writes."""

    def done() -> bool:
        assert worker.alive(), worker.log_tail()
        return committed_all(bootstrap, worker.group, topic)

    wait_until(done, timeout, "the worker to commit every record")


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


# ---------------------------------------------------------------- what the state and the events must say


def as_of_day(events: Sequence[envelope_pb2.Envelope]) -> int:
    """The event-time day of the newest event: the publisher's day once the worker saw them all."""
    return max(e.occurred_at.ToMilliseconds() for e in events) // DAY_MS


def flat(figs_windows: dict[str, dict[str, float]], signals: dict[str, float]) -> Flat:
    """Figures as one mapping (pytest.approx compares flat mappings)."""
    out = {f"signal {name}": float(value) for name, value in signals.items()}
    out |= {f"{w} {c}": float(v) for w, scores in figs_windows.items() for c, v in scores.items()}
    return out


def state_figures(states: dict[str, State | None], as_of: int) -> dict[str, Flat]:
    """The model's figures of each known state as of the day (the publisher's computation)."""
    out = {}
    for employee, state in states.items():
        if state is not None:
            figs = figures(state, max(state.top, as_of), MODEL)
            out[employee] = flat(figs.windows, figs.signals)
    return out


def expected(bootstrap: str, topic: str, as_of: int) -> dict[str, Flat]:
    """The figures the records on the interactions topic must give, however the worker was interrupted."""
    return state_figures(dict(expected_states(topic_records(bootstrap, topic), MODEL)), as_of)


def stored(redis_url: str, employees: Sequence[str], as_of: int) -> dict[str, Flat]:
    """The figures of what the worker left in Redis (RedisStore.read_states decodes with model/state.decode)."""

    async def read() -> dict[str, State | None]:
        client = aioredis.Redis.from_url(redis_url)
        try:
            return await RedisStore(client, MODEL.keep_days, PSEUDONYM_KEY, MARKER_TTL).read_states(employees)
        finally:
            await client.aclose()

    return state_figures(asyncio.run(read()), as_of)


def raw_fields(redis_url: str, employees: Sequence[str]) -> dict[str, dict[str, str]]:
    async def read() -> dict[str, dict[str, str]]:
        client = aioredis.Redis.from_url(redis_url)
        try:
            store = RedisStore(client, MODEL.keep_days, PSEUDONYM_KEY, MARKER_TTL)
            return {e: await store.raw_fields(e) for e in employees}
        finally:
            await client.aclose()

    return asyncio.run(read())


def latest_scores(bootstrap: str, topic: str) -> dict[str, envelope_pb2.Envelope | None]:
    """Per employee, what compaction keeps: the last record (None for a tombstone)."""
    latest: dict[str, envelope_pb2.Envelope | None] = {}
    for key, value in read_all(bootstrap, topic):
        assert key is not None
        latest[key.decode()] = None if value is None else envelope_pb2.Envelope.FromString(value)
    return latest


def published_figures(env: envelope_pb2.Envelope) -> Flat:
    change = env.score_changed
    windows = {w: {f.name: v for f, v in s.ListFields()} for w, s in change.windows.items()}
    return flat(windows, dict(change.signals))


def matches(published: Flat, want: Flat) -> bool:
    """Equal up to float noise (a sum's order follows the stored hash's order), zero fields included."""
    keys = set(published) | set(want)
    return all(abs(published.get(k, 0.0) - want.get(k, 0.0)) <= 1e-6 for k in keys)


def assert_same_figures(got: dict[str, Flat], want: dict[str, Flat]) -> None:
    assert sorted(got) == sorted(want)
    differ = sorted(e for e in want if not matches(got[e], want[e]))
    assert not differ, f"{len(differ)} employees differ, e.g. {differ[0]}: {got[differ[0]]} != {want[differ[0]]}"


def wait_published(bootstrap: str, topic: str, want: dict[str, Flat], as_of: int, timeout: float = 120) -> None:
    """Until every employee's latest ScoreChanged carries the wanted figures as of the day."""
    missing: list[str] = []

    def done() -> bool:
        latest = latest_scores(bootstrap, topic)
        missing[:] = [
            e
            for e, figs in want.items()
            if (env := latest.get(e)) is None
            or env.score_changed.version >> 32 != as_of
            or not matches(published_figures(env), figs)
        ]
        return not missing

    try:
        wait_until(done, timeout, "the publisher to publish the final figures")
    except AssertionError:
        raise AssertionError(f"not published as of day {as_of}: {sorted(missing)[:10]}") from None
