"""`python -m bench.feed_ingest`: IngestInteractions throughput of a real feed process.

Starts a private redis-server and `python -m services.feed` (its relay publishing to a fresh topic on the
shared Kafka broker), registers a directory, then for each in-flight level sends N interactions in batches
and measures:

* ingest rate: interactions acknowledged by the feed per second (what a caller like the simulator sees);
* end-to-end rate: interactions per second until the outbox is empty and every event is on the topic;
* retries (UNAVAILABLE / DEADLINE_EXCEEDED, what WATCH conflicts used to cause), call latency, and the CPU
  seconds the feed process and redis-server spent.

A last phase sends overlapping batches of one source concurrently and checks that every interaction is
taken exactly once (accepted count and records on the topic). Prints a Markdown table; `--json` writes it too.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
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
RETRYABLE = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.ABORTED}
T0 = 1_650_000_000


def wait_until(predicate: Callable[[], bool], timeout: float, what: str, interval: float = 0.1) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(interval)


class Processes:
    """The private redis-server and the feed process of one benchmark run."""

    def __init__(self, workdir: Path, bootstrap: str, topic: str, feed_env: dict[str, str], feed_root: Path) -> None:
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
            "CATALYST_LOG_LEVEL": "WARNING",
            **feed_env,
        }
        self.feed_log = (workdir / "feed.log").open("w")
        self.feed = subprocess.Popen(
            [sys.executable, "-m", "services.feed"], env=env, cwd=feed_root, stdout=self.feed_log, stderr=self.feed_log
        )
        self.target = f"127.0.0.1:{self.grpc_port}"
        wait_until(self._feed_serving, 60, "the feed to serve", interval=0.3)

    def _feed_serving(self) -> bool:
        if self.feed.poll() is not None:
            raise SystemExit(f"the feed exited with {self.feed.returncode}; see {self.feed_log.name}")
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

    def cpu(self) -> tuple[float, float]:
        return cpu_seconds(self.feed.pid, children=True), cpu_seconds(self.redis_server.process.pid, children=True)

    def stop(self) -> None:
        if self.feed.poll() is None:
            self.feed.send_signal(signal.SIGTERM)
            try:
                self.feed.wait(60)
            except subprocess.TimeoutExpired:
                self.feed.kill()
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
        redis_cpu_seconds=round(cpu_after[1] - cpu_before[1], 1),
        load_average=round(os.getloadavg()[0], 1),
    )


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
        "| max outbox | p50 ms | p95 ms | feed CPU s | feed CPU µs/interaction | redis CPU s | load avg |"
    )
    rows = [head, "|" + "---|" * 15]
    for r in results:
        rows.append(
            f"| {r.phase} | {r.in_flight} | {r.interactions} | {r.ingest_rate} | {r.end_to_end_rate} | {r.retries} "
            f"| {r.failures} | {r.records_on_topic} | {r.max_outbox_depth} | {r.call_p50_ms} | {r.call_p95_ms} "
            f"| {r.feed_cpu_seconds} | {r.feed_cpu_us_per_interaction} | {r.redis_cpu_seconds} | {r.load_average} |"
        )
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--interactions", type=int, default=50_000, help="per in-flight level")
    parser.add_argument("--employees", type=int, default=2_000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--in-flight", default="1,4,8", help="comma-separated levels")
    parser.add_argument("--overlap-batches", type=int, default=40, help="0 skips the overlap phase")
    parser.add_argument("--timeout", type=float, default=60.0, help="per call, like the simulator")
    parser.add_argument("--bootstrap", default=os.environ.get("CATALYST_KAFKA_BOOTSTRAP", "127.0.0.1:9092"))
    parser.add_argument("--feed-env", action="append", default=[], help="KEY=VALUE for the feed process")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument(
        "--feed-root",
        type=Path,
        default=ROOT,
        help="run the feed from another tree, e.g. `git archive <commit> services | tar -x -C DIR` (before/after)",
    )
    args = parser.parse_args()

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
    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="feed-bench-") as tmp:
        procs = Processes(Path(tmp), args.bootstrap, topic, feed_env, args.feed_root.resolve())
        try:
            print(
                f"feed pid {procs.feed.pid}, redis pid {procs.redis_server.process.pid}, topic {topic}", file=sys.stderr
            )
            register(procs.target, employees, hr)
            wait_until(lambda: procs.outbox_depth() == 0, 120, "the directory events to go out")
            for level in [int(x) for x in args.in_flight.split(",")]:
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
    print(table(results))
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in results], indent=2))


def batches_of(
    source: str, items: list[feed_pb2.ImportedInteraction], size: int
) -> list[feed_pb2.IngestInteractionsRequest]:
    return [
        feed_pb2.IngestInteractionsRequest(source=source, interactions=items[i : i + size])
        for i in range(0, len(items), size)
    ]


if __name__ == "__main__":
    main()
