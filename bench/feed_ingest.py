"""`python -m bench.feed_ingest`: import throughput of a real feed, acknowledged and on Kafka.

Starts a private redis-server, `python -m services.feed` with `CATALYST_RELAY_ENABLED=false` and
`python -m services.feed.relay` (publishing to a fresh topic on the shared Kafka broker; `--relay inline`
runs the relay inside the gRPC process instead, as `--feed-root` trees from before the relay process need),
registers a directory, then measures:

* relay (acknowledged -> on Kafka): the relay process is paused (SIGSTOP) while N interactions are
  acknowledged, then resumed (SIGCONT); the rate is N over the time from resuming until the outbox is empty
  and every event is on the topic. Repeated `--relay-rounds` times; the median is checked against the
  target (docs/feed.md, "Ingestion throughput");
* for each in-flight level, with the relay running: the ingest rate (interactions acknowledged per second,
  what a caller like the simulator sees) and the end-to-end rate (until the outbox is empty and every event
  is on the topic), retries, call latency, and the CPU seconds of the feed, the relay and redis-server.

A last phase sends overlapping batches of one source concurrently and checks that every interaction is
taken exactly once (accepted count and records on the topic). Prints Markdown tables and writes a report
(`--out`, default bench/results/feed-import.md); `--json` writes the figures too.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import grpc
from catalyst.events.v1 import interactions_pb2 as ev
from catalyst.feed.v1 import feed_pb2, feed_pb2_grpc
from google.protobuf.timestamp_pb2 import Timestamp
from grpc_health.v1 import health_pb2, health_pb2_grpc
from kafka import KafkaConsumer, TopicPartition

from bench.processes import cpu_seconds, free_port
from bench.redis_instance import RedisInstance
from services.common.auth import Role
from services.common.grpc_client import bearer
from services.common.kafka_admin import delete_topics, ensure_topics
from services.common.local_issuer import LocalIssuer
from services.common.topics import TopicSpec, load_topics
from services.issuer.server import serve

ROOT = Path(__file__).resolve().parents[1]
REPORT = ROOT / "bench" / "results" / "feed-import.md"
TARGET_RELAY_RATE = 25_000  # acknowledged -> on Kafka, interactions per second (issue 26)
RETRYABLE = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.ABORTED}
T0 = 1_650_000_000


def wait_until(predicate: Callable[[], bool], timeout: float, what: str, interval: float = 0.1) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(interval)


class Processes:
    """The private redis-server, the feed process and (unless inline) the relay process of one run."""

    def __init__(
        self,
        workdir: Path,
        bootstrap: str,
        topic: str,
        feed_env: dict[str, str],
        feed_root: Path,
        relay_process: bool,
    ) -> None:
        self.redis_server = RedisInstance(workdir)
        self.redis = self.redis_server.client
        self.grpc_port, self.metrics_port = free_port(), free_port()
        env = {
            **os.environ,
            "PYTHONPATH": f"{feed_root}:{ROOT / 'gen'}",
            "CATALYST_REDIS_URL": self.redis_server.url,
            "CATALYST_KAFKA_BOOTSTRAP": bootstrap,
            "CATALYST_TOPIC_INTERACTIONS": topic,
            "CATALYST_GRPC_HOST": "127.0.0.1",
            "CATALYST_GRPC_PORT": str(self.grpc_port),
            "CATALYST_METRICS_HOST": "127.0.0.1",
            "CATALYST_METRICS_PORT": str(self.metrics_port),
            "CATALYST_RELAY_METRICS_PORT": str(free_port()),
            "CATALYST_RELAY_ENABLED": "false" if relay_process else "true",
            "CATALYST_LOG_LEVEL": "WARNING",
            **feed_env,
        }
        self.feed_log = (workdir / "feed.log").open("w")
        self.feed = subprocess.Popen(
            [sys.executable, "-m", "services.feed"], env=env, cwd=feed_root, stdout=self.feed_log, stderr=self.feed_log
        )
        self.relay: subprocess.Popen | None = None
        if relay_process:
            relay_env, command = env, ["-m", "services.feed.relay"]
            if not (feed_root / "services" / "feed" / "relay.py").exists():
                # A tree from before the relay process: a second feed whose relay is its only busy part.
                relay_env = {**env, "CATALYST_RELAY_ENABLED": "true", "CATALYST_GRPC_PORT": str(free_port())}
                relay_env["CATALYST_METRICS_PORT"] = env["CATALYST_RELAY_METRICS_PORT"]
                command = ["-m", "services.feed"]
            self.relay = subprocess.Popen(
                [sys.executable, *command], env=relay_env, cwd=feed_root, stdout=self.feed_log, stderr=self.feed_log
            )
        self.target = f"127.0.0.1:{self.grpc_port}"
        wait_until(self._feed_serving, 60, "the feed to serve", interval=0.3)

    def _feed_serving(self) -> bool:
        for name, process in (("feed", self.feed), ("relay", self.relay)):
            if process is not None and process.poll() is not None:
                raise SystemExit(f"the {name} exited with {process.returncode}; see {self.feed_log.name}")
        with grpc.insecure_channel(self.target) as ch:
            try:
                status = health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(), timeout=2).status
            except grpc.RpcError:
                return False
        return status == health_pb2.HealthCheckResponse.SERVING

    def outbox_depth(self) -> int:
        keys = list(self.redis.scan_iter(match="feed:outbox:[0-9]*", count=1000))
        return sum(self.redis.xlen(k) for k in keys)

    def metric(self, name: str) -> float:
        body = urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5).read().decode()
        for line in body.splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
        return 0.0

    def cpu(self) -> tuple[float, float, float]:
        """CPU seconds so far of the feed, the relay process (0 when inline) and redis-server."""
        relay = cpu_seconds(self.relay.pid, children=True) if self.relay is not None else 0.0
        return (
            cpu_seconds(self.feed.pid, children=True),
            relay,
            cpu_seconds(self.redis_server.process.pid, children=True),
        )

    def stop(self) -> None:
        for process in (self.relay, self.feed):
            if process is None or process.poll() is not None:
                continue
            process.send_signal(signal.SIGCONT)
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                process.kill()
        self.feed_log.close()
        self.redis_server.stop()


def at(seconds: int) -> Timestamp:
    return Timestamp(seconds=seconds)


def interaction(rng: random.Random, source_id: str, seconds: int, employees: list[str]) -> feed_pb2.ImportedInteraction:
    """A realistic mix; target-author departments are left empty so the feed looks them up."""
    actor, other = rng.sample(employees, 2)
    item = feed_pb2.ImportedInteraction(source_id=source_id, actor_id=actor, occurred_at=at(seconds))
    roll = rng.random()
    ref = f"x-{rng.randrange(5000)}"
    if roll < 0.35:
        item.reaction_added.CopyFrom(ev.ReactionAdded(post_id=ref, post_author_id=other, reaction=1 + rng.randrange(5)))
    elif roll < 0.60:
        item.comment_added.CopyFrom(
            ev.CommentAdded(comment_id=f"c-{source_id}", post_id=ref, post_author_id=other, body_length=120)
        )
    elif roll < 0.72:
        item.post_created.CopyFrom(ev.PostCreated(post_id=f"p-{source_id}", body_length=400, tags=["news", "it"]))
    elif roll < 0.78:
        item.question_asked.CopyFrom(ev.QuestionAsked(question_id=f"q-{source_id}", body_length=200))
    elif roll < 0.86:
        item.answer_posted.CopyFrom(
            ev.AnswerPosted(answer_id=f"a-{source_id}", question_id=ref, question_author_id=other, body_length=300)
        )
    elif roll < 0.89:
        item.answer_accepted.CopyFrom(ev.AnswerAccepted(answer_id=ref, question_id=ref, answer_author_id=other))
    elif roll < 0.93:
        item.feature_tried.CopyFrom(ev.FeatureTried(feature_id=f"f-{rng.randrange(30)}"))
    elif roll < 0.96:
        item.profile_updated.CopyFrom(ev.ProfileUpdated(completeness=rng.random()))
    elif roll < 0.98:
        item.feedback_submitted.CopyFrom(ev.FeedbackSubmitted(feedback_id=f"fb-{source_id}", kind=1))
    else:
        item.survey_answered.CopyFrom(ev.SurveyAnswered(survey_id=f"s-{rng.randrange(5)}", pre_launch=True))
    return item


def batches(
    source: str, count: int, size: int, employees: list[str], seed: int
) -> list[feed_pb2.IngestInteractionsRequest]:
    rng = random.Random(seed)
    items = [interaction(rng, f"{source}-{i}", T0 + i, employees) for i in range(count)]
    return [
        feed_pb2.IngestInteractionsRequest(source=source, interactions=items[i : i + size])
        for i in range(0, count, size)
    ]


@dataclass
class CallStats:
    accepted: int = 0
    duplicates: int = 0
    retries: int = 0
    failures: int = 0


async def send_all(
    target: str,
    requests: list[feed_pb2.IngestInteractionsRequest],
    in_flight: int,
    metadata: tuple,
    timeout: float,
) -> tuple[CallStats, list[float]]:
    """Sends every batch with at most `in_flight` calls outstanding; retries transient errors like the
    simulator does."""
    stats, latencies = CallStats(), []
    slots = asyncio.Semaphore(in_flight)
    async with grpc.aio.insecure_channel(target) as ch:
        stub = feed_pb2_grpc.FeedServiceStub(ch)

        async def one(request: feed_pb2.IngestInteractionsRequest) -> None:
            async with slots:
                for attempt in range(8):
                    start = time.perf_counter()
                    try:
                        response = await stub.IngestInteractions(request, metadata=metadata, timeout=timeout)
                    except grpc.aio.AioRpcError as exc:
                        if exc.code() not in RETRYABLE or attempt == 7:
                            stats.failures += 1
                            print(f"  call failed: {exc.code().name}: {exc.details()}", file=sys.stderr)
                            return
                        stats.retries += 1
                        await asyncio.sleep(0.2 * 2**attempt)
                        continue
                    latencies.append(time.perf_counter() - start)
                    stats.accepted += response.accepted
                    stats.duplicates += response.duplicates
                    return

        await asyncio.gather(*(one(r) for r in requests))
    return stats, latencies


def topic_size(bootstrap: str, topic: str, partitions: int) -> int:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap)
    try:
        ends = consumer.end_offsets([TopicPartition(topic, p) for p in range(partitions)])
        return sum(ends.values())
    finally:
        consumer.close()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


@dataclass
class Result:
    phase: str
    in_flight: int
    interactions: int
    accepted: int
    duplicates: int
    retries: int
    failures: int
    ingest_seconds: float
    ingest_rate: float
    end_to_end_seconds: float
    end_to_end_rate: float
    records_on_topic: int
    max_outbox_depth: int
    call_p50_ms: float
    call_p95_ms: float
    feed_cpu_seconds: float
    feed_cpu_us_per_interaction: float
    relay_cpu_seconds: float
    relay_cpu_us_per_interaction: float
    redis_cpu_seconds: float
    load_average: float


def run_level(
    procs: Processes,
    bootstrap: str,
    topic: str,
    partitions: int,
    phase: str,
    requests: list[feed_pb2.IngestInteractionsRequest],
    in_flight: int,
    unique: int,
    metadata: tuple,
    timeout: float,
) -> Result:
    total = sum(len(r.interactions) for r in requests)
    before = topic_size(bootstrap, topic, partitions)
    cpu_before = procs.cpu()
    max_depth = 0

    async def ingest_and_watch() -> tuple[CallStats, list[float], float]:
        nonlocal max_depth
        start = time.perf_counter()
        task = asyncio.create_task(send_all(procs.target, requests, in_flight, metadata, timeout))
        while not task.done():
            max_depth = max(max_depth, await asyncio.to_thread(procs.outbox_depth))
            await asyncio.sleep(0.5)
        stats, latencies = await task
        return stats, latencies, time.perf_counter() - start

    start = time.perf_counter()
    stats, latencies, ingest_seconds = asyncio.run(ingest_and_watch())
    wait_until(lambda: procs.outbox_depth() == 0, 600, "the outbox to drain", interval=0.05)
    wait_until(lambda: topic_size(bootstrap, topic, partitions) - before >= stats.accepted, 120, "the topic")
    e2e = time.perf_counter() - start
    cpu_after = procs.cpu()
    records = topic_size(bootstrap, topic, partitions) - before
    if stats.accepted != unique or records != unique:
        print(f"  MISMATCH: {unique} unique, {stats.accepted} accepted, {records} on the topic", file=sys.stderr)
    return Result(
        phase=phase,
        in_flight=in_flight,
        interactions=total,
        accepted=stats.accepted,
        duplicates=stats.duplicates,
        retries=stats.retries,
        failures=stats.failures,
        ingest_seconds=round(ingest_seconds, 2),
        ingest_rate=round(total / ingest_seconds),
        end_to_end_seconds=round(e2e, 2),
        end_to_end_rate=round(unique / e2e),
        records_on_topic=records,
        max_outbox_depth=max_depth,
        call_p50_ms=round(percentile(latencies, 0.5) * 1000),
        call_p95_ms=round(percentile(latencies, 0.95) * 1000),
        feed_cpu_seconds=round(cpu_after[0] - cpu_before[0], 1),
        feed_cpu_us_per_interaction=round((cpu_after[0] - cpu_before[0]) / unique * 1e6),
        relay_cpu_seconds=round(cpu_after[1] - cpu_before[1], 1),
        relay_cpu_us_per_interaction=round((cpu_after[1] - cpu_before[1]) / unique * 1e6),
        redis_cpu_seconds=round(cpu_after[2] - cpu_before[2], 1),
        load_average=round(os.getloadavg()[0], 1),
    )


@dataclass
class RelayRound:
    interactions: int
    ingest_rate: int
    seconds: float
    rate: int
    records_on_topic: int
    relay_cpu_seconds: float
    relay_cpu_us_per_interaction: float
    redis_cpu_seconds: float
    load_average: float


def run_relay_round(
    procs: Processes,
    bootstrap: str,
    topic: str,
    partitions: int,
    requests: list[feed_pb2.IngestInteractionsRequest],
    metadata: tuple,
    timeout: float,
) -> RelayRound:
    """Acknowledged -> on Kafka: N interactions wait in the outbox while the relay process is stopped; the
    clock runs from resuming it until the outbox is empty (the relay removes an entry only after the broker
    acknowledged it with acks=all), then the topic is checked."""
    if procs.relay is None:
        raise SystemExit("the relay phase needs the relay in its own process (--relay process)")
    unique = sum(len(r.interactions) for r in requests)
    before = topic_size(bootstrap, topic, partitions)
    procs.relay.send_signal(signal.SIGSTOP)
    try:
        start = time.perf_counter()
        stats, _ = asyncio.run(send_all(procs.target, requests, 2, metadata, timeout))
        ingest_seconds = time.perf_counter() - start
        if stats.accepted != unique or procs.outbox_depth() != unique:
            raise SystemExit(f"{unique} sent, {stats.accepted} accepted, {procs.outbox_depth()} in the outbox")
        cpu_before = procs.cpu()
    finally:
        procs.relay.send_signal(signal.SIGCONT)
    start = time.perf_counter()
    wait_until(lambda: procs.outbox_depth() == 0, 600, "the outbox to drain", interval=0.02)
    seconds = time.perf_counter() - start
    cpu_after = procs.cpu()
    load = os.getloadavg()[0]
    wait_until(lambda: topic_size(bootstrap, topic, partitions) - before >= unique, 120, "the topic")
    records = topic_size(bootstrap, topic, partitions) - before
    if records != unique:
        print(f"  MISMATCH: {unique} acknowledged, {records} on the topic", file=sys.stderr)
    return RelayRound(
        interactions=unique,
        ingest_rate=round(unique / ingest_seconds),
        seconds=round(seconds, 2),
        rate=round(unique / seconds),
        records_on_topic=records,
        relay_cpu_seconds=round(cpu_after[1] - cpu_before[1], 1),
        relay_cpu_us_per_interaction=round((cpu_after[1] - cpu_before[1]) / unique * 1e6, 1),
        redis_cpu_seconds=round(cpu_after[2] - cpu_before[2], 1),
        load_average=round(load, 1),
    )


def relay_table(rounds: list[RelayRound]) -> str:
    rows = [
        "| round | acknowledged | ingest/s (relay stopped) | drain s | acknowledged -> on Kafka /s | on topic "
        "| relay CPU s | relay CPU µs/interaction | redis CPU s | load avg |",
        "|" + "---|" * 10,
    ]
    for n, r in enumerate(rounds, start=1):
        rows.append(
            f"| {n} | {r.interactions} | {r.ingest_rate} | {r.seconds} | {r.rate} | {r.records_on_topic} "
            f"| {r.relay_cpu_seconds} | {r.relay_cpu_us_per_interaction} | {r.redis_cpu_seconds} | {r.load_average} |"
        )
    return "\n".join(rows)


def register(target: str, employees: list[str], metadata: tuple) -> None:
    with grpc.insecure_channel(target) as ch:
        stub = feed_pb2_grpc.FeedServiceStub(ch)
        for i in range(0, len(employees), 1000):
            rows = [
                feed_pb2.Employee(employee_id=e, display_name=e, department_id=f"d-{n % 20:02d}")
                for n, e in enumerate(employees[i : i + 1000], start=i)
            ]
            stub.UpsertEmployees(feed_pb2.UpsertEmployeesRequest(employees=rows), metadata=metadata, timeout=60)


def table(results: list[Result]) -> str:
    head = (
        "| phase | in flight | interactions | ingest/s | end-to-end/s | retries | failures | on topic "
        "| max outbox | p50 ms | p95 ms | feed CPU s | feed CPU µs/interaction | relay CPU µs/interaction "
        "| redis CPU s | load avg |"
    )
    rows = [head, "|" + "---|" * 16]
    for r in results:
        rows.append(
            f"| {r.phase} | {r.in_flight} | {r.interactions} | {r.ingest_rate} | {r.end_to_end_rate} | {r.retries} "
            f"| {r.failures} | {r.records_on_topic} | {r.max_outbox_depth} | {r.call_p50_ms} | {r.call_p95_ms} "
            f"| {r.feed_cpu_seconds} | {r.feed_cpu_us_per_interaction} | {r.relay_cpu_us_per_interaction} "
            f"| {r.redis_cpu_seconds} | {r.load_average} |"
        )
    return "\n".join(rows)


def machine() -> str:
    """CPU model and count, for the report."""
    lines = Path("/proc/cpuinfo").read_text().splitlines()
    model = next((line.split(":", 1)[1].strip() for line in lines if "model name" in line), platform.processor())
    return f"{os.cpu_count()} x {model}, Python {platform.python_version()}, {platform.system()} {platform.release()}"


def report(
    args: argparse.Namespace,
    rounds: list[RelayRound],
    results: list[Result],
    load_before: tuple[float, float, float],
    load_after: tuple[float, float, float],
) -> str:
    """The Markdown report: method, machine and load, the relay rounds against the target, the levels."""
    median = round(statistics.median(r.rate for r in rounds)) if rounds else 0
    verdict = "PASS" if median >= TARGET_RELAY_RATE else "FAIL"
    lines = [
        "# Feed import: acknowledged -> on Kafka",
        "",
        f"`python -m bench.feed_ingest` on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, commit "
        f"{git_commit()}; {machine()}. Load average (1, 5, 15 min) before: "
        f"{', '.join(f'{x:.1f}' for x in load_before)}; after: {', '.join(f'{x:.1f}' for x in load_after)}. "
        "The machine is shared with other work; the load column is the 1-minute load at the end of each phase.",
        "",
        "## Method",
        "",
        "A private redis-server, `python -m services.feed` (gRPC, `CATALYST_RELAY_ENABLED=false`) and "
        "`python -m services.feed.relay` (its own process) publishing to a fresh topic with the interactions "
        f"topic's partitions on the shared broker; {args.employees} employees in the directory; a realistic mix of "
        f"interaction kinds in batches of {args.batch} through `IngestInteractions`. Feed settings: "
        f"{', '.join(args.feed_env) or 'defaults'}"
        + (f"; the feed's code from {args.feed_root}." if args.feed_root.resolve() != ROOT else "."),
        "",
        f"* **Relay** ({args.relay_rounds} rounds of {args.relay_interactions}): the relay process is stopped "
        "(SIGSTOP) while the interactions are acknowledged (2 calls in flight), then resumed (SIGCONT); the rate "
        "is the acknowledged count over the time until the outbox is empty. The relay removes an entry only "
        "after the broker acknowledged it (acks=all), so an empty outbox means every event is on Kafka; the "
        "topic is counted afterwards.",
        f"* **Levels** ({args.interactions} per level): ingest with the relay running; ingest/s is what the "
        "caller sees, end-to-end/s runs until the outbox is empty and every event is on the topic. "
        '"overlap x2" sends every interaction twice in straddling batches, 8 calls at a time.',
        "",
        f"## Acknowledged -> on Kafka: median {median:,}/s, target {TARGET_RELAY_RATE:,}/s: {verdict}",
        "",
        relay_table(rounds) if rounds else "(skipped)",
        "",
        "## Ingest and end-to-end with the relay running",
        "",
        table(results) if results else "(skipped)",
        "",
    ]
    return "\n".join(lines)


def git_commit() -> str:
    done = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    paths = ["services/feed", "bench/feed_ingest.py"]
    dirty = subprocess.run(["git", "status", "--porcelain", *paths], cwd=ROOT, capture_output=True, text=True)
    return done.stdout.strip() + (" (with uncommitted changes)" if dirty.stdout.strip() else "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--interactions", type=int, default=50_000, help="per in-flight level")
    parser.add_argument("--employees", type=int, default=2_000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--in-flight", default="1,2,4,8", help="comma-separated levels ('' skips them)")
    parser.add_argument("--relay-rounds", type=int, default=3, help="acknowledged -> on Kafka rounds (0 skips)")
    parser.add_argument("--relay-interactions", type=int, default=100_000, help="per relay round")
    parser.add_argument("--overlap-batches", type=int, default=40, help="0 skips the overlap phase")
    parser.add_argument("--timeout", type=float, default=60.0, help="per call, like the simulator")
    parser.add_argument("--bootstrap", default=os.environ.get("CATALYST_KAFKA_BOOTSTRAP", "127.0.0.1:9092"))
    parser.add_argument("--feed-env", action="append", default=[], help="KEY=VALUE for the feed and relay processes")
    parser.add_argument(
        "--relay",
        choices=["process", "inline"],
        default="process",
        help="the relay in a process of its own, or inside the gRPC process (no relay rounds then)",
    )
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--out", type=Path, default=REPORT, help="the Markdown report ('-' writes none)")
    parser.add_argument(
        "--feed-root",
        type=Path,
        default=ROOT,
        help="run the feed from another tree, e.g. `git archive <commit> services | tar -x -C DIR` (before/after); "
        "a tree without services/feed/relay.py gets a second `python -m services.feed` as its relay process",
    )
    args = parser.parse_args()
    relay_process = args.relay == "process"

    spec = load_topics()["interactions"]
    topic = f"{spec.name}.bench-{uuid.uuid4().hex[:8]}"
    ensure_topics(args.bootstrap, [TopicSpec(spec.key, topic, spec.partitions, spec.config)])
    issuer_port = free_port()
    authority = LocalIssuer(
        Path(tempfile.mkdtemp(prefix="bench-issuer-")), f"http://127.0.0.1:{issuer_port}", "catalyst"
    )
    authority.ensure_key()
    serve(authority, "127.0.0.1", issuer_port)
    service = bearer(authority.mint("bench-bridge", [Role.SERVICE], 7200))
    hr = bearer(authority.mint("bench-hr", [Role.HR], 7200))
    employees = [f"e-{i:05d}" for i in range(args.employees)]
    feed_env = {"CATALYST_OIDC_ISSUER": authority.issuer, **dict(kv.split("=", 1) for kv in args.feed_env)}
    load_before = os.getloadavg()
    rounds: list[RelayRound] = []
    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="feed-bench-") as tmp:
        procs = Processes(Path(tmp), args.bootstrap, topic, feed_env, args.feed_root.resolve(), relay_process)
        try:
            relay_pid = procs.relay.pid if procs.relay is not None else "inline"
            print(
                f"feed pid {procs.feed.pid}, relay pid {relay_pid}, redis pid {procs.redis_server.process.pid}, "
                f"topic {topic}",
                file=sys.stderr,
            )
            register(procs.target, employees, hr)
            wait_until(lambda: procs.outbox_depth() == 0, 120, "the directory events to go out")
            for n in range(args.relay_rounds if relay_process else 0):
                source = f"bench-relay-{n}-{uuid.uuid4().hex[:6]}"
                requests = batches(source, args.relay_interactions, args.batch, employees, seed=100 + n)
                print(f"relay round {n + 1}: {len(requests)} calls, then the relay drains ...", file=sys.stderr)
                rounds.append(
                    run_relay_round(procs, args.bootstrap, topic, spec.partitions, requests, service, args.timeout)
                )
                print(relay_table(rounds[-1:]).splitlines()[-1], file=sys.stderr)
            for level in [int(x) for x in args.in_flight.split(",") if x]:
                source = f"bench-{level}-{uuid.uuid4().hex[:6]}"
                requests = batches(source, args.interactions, args.batch, employees, seed=level)
                print(f"in flight {level}: {len(requests)} calls ...", file=sys.stderr)
                result = run_level(
                    procs,
                    args.bootstrap,
                    topic,
                    spec.partitions,
                    "fresh",
                    requests,
                    level,
                    args.interactions,
                    service,
                    args.timeout,
                )
                print(table([result]).splitlines()[-1], file=sys.stderr)
                results.append(result)
            if args.overlap_batches:
                # Every interaction is sent twice, in batches that straddle each other, 8 calls at a time.
                source = f"bench-overlap-{uuid.uuid4().hex[:6]}"
                unique = args.overlap_batches * args.batch
                base = batches(source, unique, args.batch, employees, seed=99)
                items = [it for r in base for it in r.interactions]
                half = args.batch // 2
                shifted = items[half:] + items[:half]
                requests = [x for pair in zip(base, batches_of(source, shifted, args.batch), strict=True) for x in pair]
                print(f"overlap: {len(requests)} calls, {unique} unique ...", file=sys.stderr)
                results.append(
                    run_level(
                        procs,
                        args.bootstrap,
                        topic,
                        spec.partitions,
                        "overlap x2",
                        requests,
                        8,
                        unique,
                        service,
                        args.timeout,
                    )
                )
        finally:
            procs.stop()
            delete_topics(args.bootstrap, [topic])
    if rounds:
        print(relay_table(rounds))
    print(table(results))
    if str(args.out) != "-":
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(report(args, rounds, results, load_before, os.getloadavg()))
        print(f"report: {args.out}", file=sys.stderr)
    if args.json:
        args.json.write_text(
            json.dumps({"relay": [asdict(r) for r in rounds], "levels": [asdict(r) for r in results]}, indent=2)
        )


def batches_of(
    source: str, items: list[feed_pb2.ImportedInteraction], size: int
) -> list[feed_pb2.IngestInteractionsRequest]:
    return [
        feed_pb2.IngestInteractionsRequest(source=source, interactions=items[i : i + size])
        for i in range(0, len(items), size)
    ]


if __name__ == "__main__":
    main()
