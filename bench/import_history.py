"""`python -m bench.import_history`: a company's history from a file to its final badges, through the real system.

Generates a history in Catalyst JSON Lines (docs/import.md) from a seeded RNG: `--employees` people over
`--days` days, about `--per-person-day` interactions per person and working day, with a heavy-tailed share
per person and replies that point at earlier posts and questions. Then, against a private redis-server and
fresh topics on the shared broker: the feed (`python -m services.feed` and `python -m services.feed.relay`),
the directory registered, `catalyst import` (`python -m services.cli import`), the engagement worker and
publisher (`python -m services.engagement.worker`, `python -m services.engagement.publisher`) and recognition
(`python -m services.recognition`), each waited for by a fact:

* ingest: the import exited, the feed's outbox is empty and every accepted interaction is on the topic;
* worker: its group committed every partition of the interactions topic to its end;
* publisher: `RedisStore.caught_up` (its cursor reached the watermark's day, nothing marked);
* recognition: its group committed everything on the engagement and interactions topics, its revocation sweep
  reached the newest ScoreChanged time on the engagement topic, and its outbox is empty (the final badges).

Staged (the default), each stage starts when the one before it is done (the publisher too starts once the
worker caught up), so each rate is that stage's alone and their sum bounds a real import from above;
`--pipelined` starts everything before the import, as a real one runs, and reports when each fact held. The
report (`--out`, default bench/results/import.md) projects the measured rates to a year of a 10,000-person
company.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import redis.asyncio as aioredis
from catalyst.events.v1 import envelope_pb2
from kafka import KafkaConsumer, TopicPartition

from bench.feed_ingest import Processes, machine, register, topic_size, wait_until
from bench.processes import cpu_seconds, free_port
from bench.run import wait_committed
from bench.worker import WorkerProcess
from services.cli.history_import import REJECTED_EXIT
from services.common.auth import Role
from services.common.consumer_lag import KafkaOffsets
from services.common.grpc_client import bearer
from services.common.kafka_admin import delete_topics, ensure_topics
from services.common.local_issuer import LocalIssuer
from services.common.topics import TopicSpec, load_topics
from services.engagement.adapters.redis_store import ROLLED, RedisStore
from services.engagement.model.config import load_model
from services.engagement.model.state import DAY_MS
from services.issuer.server import serve
from services.recognition.store import outbox_key

ROOT = Path(__file__).resolve().parents[1]
REPORT = ROOT / "bench" / "results" / "import.md"
TARGET = {"interactions": 20_000_000, "employees": 10_000, "days": 365, "seconds": 600}  # issue 26 item 5
KEEP_DAYS = load_model().keep_days
MIX = [  # (kind, share): reactions and comments dominate an intranet's activity
    ("reactionAdded", 0.40),
    ("commentAdded", 0.24),
    ("postCreated", 0.12),
    ("questionAsked", 0.05),
    ("answerPosted", 0.08),
    ("answerAccepted", 0.03),
    ("featureTried", 0.04),
    ("profileUpdated", 0.02),
    ("feedbackSubmitted", 0.02),
]
TIMEOUT = 3 * 3600  # the longest any one wait may take
CLOCK = "recognition_revocation_clock_seconds"


@dataclass
class History:
    """What the generated file holds, and the publisher's work it implies."""

    path: Path
    interactions: int
    employees: list[str]
    first_day: int
    last_day: int
    active_by_day: dict[int, int]  # people the publisher recomputes on each day (active within KEEP_DAYS)

    @property
    def person_days(self) -> int:
        return sum(self.active_by_day.values())


def generate(path: Path, employees: int, days: int, per_person_day: float, seed: int) -> History:
    """A company's history ending yesterday; about 15 % never take part, the rest with lognormal weights."""
    rng = random.Random(seed)
    people = [f"e-{i:05d}" for i in range(employees)]
    weights = [0.0 if rng.random() < 0.15 else rng.lognormvariate(0, 1.0) for _ in people]
    kinds, shares = zip(*MIX, strict=True)
    start = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=days)
    posts: list[tuple[str, str]] = []
    questions: list[tuple[str, str]] = []
    answers: list[tuple[str, str, str]] = []
    last_active: dict[str, int] = {}
    active_by_day: dict[int, int] = {}
    n = 0
    with path.open("w", encoding="utf-8") as out:
        for d in range(days):
            when = start + timedelta(days=d)
            day = int(when.timestamp() * 1000) // DAY_MS
            weekday = when.weekday() < 5
            count = round(employees * per_person_day * (1.0 if weekday else 0.15) * rng.uniform(0.8, 1.2))
            actors = rng.choices(people, weights, k=count)
            others = rng.choices(people, weights, k=count)
            for actor, other, kind in zip(actors, others, rng.choices(kinds, shares, k=count), strict=True):
                n += 1
                at = when + timedelta(seconds=rng.randrange(7 * 3600, 19 * 3600))
                row = {"sourceId": f"h-{n}", "actorId": actor, "occurredAt": at.strftime("%Y-%m-%dT%H:%M:%SZ")}
                kind, fields = payload(rng, kind, n, actor, other, posts, questions, answers)
                row[kind] = fields
                out.write(json.dumps(row, separators=(",", ":")) + "\n")
                last_active[actor] = day
            active_by_day[day] = sum(1 for last in last_active.values() if last > day - KEEP_DAYS)
    return History(path, n, people, min(active_by_day), max(active_by_day), active_by_day)


def payload(
    rng: random.Random,
    kind: str,
    n: int,
    actor: str,
    other: str,
    posts: list[tuple[str, str]],
    questions: list[tuple[str, str]],
    answers: list[tuple[str, str, str]],
) -> tuple[str, dict]:
    """One interaction's kind and fields; replies point at a recent post, question or answer (an older one when
    none is known). What the feed refuses (a reaction to one's own post, accepting one's own answer) becomes a
    comment: the file holds no rejects."""
    post_id, post_author = rng.choice(posts[-3000:]) if posts else (f"old-{n}", other)
    question_id, asker = rng.choice(questions[-1000:]) if questions else (f"oldq-{n}", other)
    length = int(rng.lognormvariate(5, 0.8))
    comment = {"commentId": f"c{n}", "postId": post_id, "postAuthorId": post_author, "bodyLength": length}
    if kind == "reactionAdded" and post_author != actor:
        return kind, {"postId": post_id, "postAuthorId": post_author, "reaction": 1 + rng.randrange(4)}
    if kind in ("commentAdded", "reactionAdded"):
        return "commentAdded", comment
    if kind == "postCreated":
        posts.append((f"p{n}", actor))
        return kind, {"postId": f"p{n}", "kind": 1, "bodyLength": length * 3, "tags": ["news"]}
    if kind == "questionAsked":
        questions.append((f"q{n}", actor))
        return kind, {"questionId": f"q{n}", "bodyLength": length}
    if kind == "answerPosted":
        answers.append((f"a{n}", question_id, actor))
        return kind, {"answerId": f"a{n}", "questionId": question_id, "questionAuthorId": asker, "bodyLength": length}
    if kind == "answerAccepted":
        answer_id, question_id, author = rng.choice(answers[-1000:]) if answers else (f"olda-{n}", question_id, other)
        if author == actor:
            return "commentAdded", comment
        return kind, {"answerId": answer_id, "questionId": question_id, "answerAuthorId": author}
    if kind == "featureTried":
        return kind, {"featureId": f"f-{rng.randrange(30)}"}
    if kind == "profileUpdated":
        return kind, {"completeness": round(rng.random(), 2)}
    return kind, {"feedbackId": f"fb{n}", "kind": 1 + rng.randrange(3), "bodyLength": length}


@dataclass
class Stage:
    name: str
    unit: str
    work: int
    seconds: float  # from the stage's start (staged) or the import's start (pipelined) until its fact held
    cpu_seconds: float = 0.0
    note: str = ""

    @property
    def rate(self) -> float:
        return self.work / self.seconds if self.seconds else 0.0


@dataclass
class Run:
    history: History
    stages: list[Stage] = field(default_factory=list)
    read_seconds: float = 0.0  # `catalyst import` start until its first batch was acknowledged
    import_peak_bytes: int = 0  # the import process's peak resident memory (it holds the whole file)
    redis_cpu_seconds: float = 0.0  # the private redis-server's, over the whole run
    total_seconds: float = 0.0
    score_changes: float = 0.0
    rollover_marked: float = 0.0
    publisher_walk: str = ""


def scrape(port: int) -> str:
    return urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()


class Recognition:
    """`python -m services.recognition` on the run's topics and Redis, with the default badge rules."""

    def __init__(self, env: dict[str, str], workdir: Path) -> None:
        self.group = f"bench-recognition-{uuid.uuid4().hex[:8]}"
        self.metrics_port = free_port()
        self.env = {
            **env,
            "CATALYST_RECOGNITION_GROUP_ID": self.group,
            "CATALYST_AUDIT_GROUP_ID": f"bench-audit-{uuid.uuid4().hex[:8]}",
            "CATALYST_GRPC_HOST": "127.0.0.1",
            "CATALYST_GRPC_PORT": str(free_port()),
            "CATALYST_METRICS_HOST": "127.0.0.1",
            "CATALYST_METRICS_PORT": str(self.metrics_port),
        }
        self.log_path = workdir / "recognition.log"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "services.recognition"], env=self.env, cwd=ROOT, stdout=log, stderr=log
            )

    def clock(self) -> float | None:
        """The revocation sweep's event time (`recognition_revocation_clock_seconds`), None before it answers."""
        if self.process is None or self.process.poll() is not None:
            raise SystemExit(f"recognition is not running; see {self.log_path}")
        try:
            body = scrape(self.metrics_port)
        except OSError:
            return None
        return next((float(line.split()[1]) for line in body.splitlines() if line.startswith(CLOCK + " ")), None)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                self.process.kill()


def newest_score_time(bootstrap: str, topic: str, tail: int = 500) -> float:
    """The newest ScoreChanged event time among the last `tail` records of each partition: what recognition's
    revocation clock reaches once it has evaluated everything."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        consumer.assign(partitions)
        ends, begins = consumer.end_offsets(partitions), consumer.beginning_offsets(partitions)
        for tp in partitions:
            consumer.seek(tp, max(begins[tp], ends[tp] - tail))
        newest = 0.0
        while any(consumer.position(tp) < ends[tp] for tp in partitions):
            for records in consumer.poll(500).values():
                for record in records:
                    env = envelope_pb2.Envelope.FromString(record.value) if record.value else None
                    if env is not None and env.WhichOneof("payload") == "score_changed":
                        newest = max(newest, env.occurred_at.seconds + env.occurred_at.nanos / 1e9)
        return newest
    finally:
        consumer.close()


class System:
    """Every process of one run, on fresh topics and a private Redis."""

    def __init__(self, args: argparse.Namespace, workdir: Path) -> None:
        self.bootstrap = args.bootstrap
        suffix = uuid.uuid4().hex[:8]
        self.specs = {
            s.key: TopicSpec(s.key, f"{s.name}.bench-{suffix}", s.partitions, s.config) for s in load_topics().values()
        }
        ensure_topics(self.bootstrap, list(self.specs.values()))
        self.topics = {key: spec.name for key, spec in self.specs.items()}
        issuer_port = free_port()
        self.authority = LocalIssuer(workdir / "issuer", f"http://127.0.0.1:{issuer_port}", "catalyst")
        self.authority.ensure_key()
        serve(self.authority, "127.0.0.1", issuer_port)
        topic_env = {f"CATALYST_TOPIC_{key.upper()}": name for key, name in self.topics.items()}
        self.feed = Processes(
            workdir,
            self.bootstrap,
            self.topics["interactions"],
            {"CATALYST_OIDC_ISSUER": self.authority.issuer, **topic_env},
            ROOT,
            True,
        )
        self.redis_url = self.feed.redis_server.url
        env = {"CATALYST_OIDC_ISSUER": self.authority.issuer, **topic_env}
        self.engagement = WorkerProcess(self.bootstrap, self.topics, self.redis_url, workdir / "engagement", env)
        common = {
            **os.environ,
            "PYTHONPATH": f"{ROOT}:{ROOT / 'gen'}",
            "CATALYST_KAFKA_BOOTSTRAP": self.bootstrap,
            "CATALYST_REDIS_URL": self.redis_url,
            "CATALYST_LOG_LEVEL": "WARNING",
            **env,
        }
        self.recognition = Recognition(common, workdir)
        self.cli_env = {**common, "CATALYST_FEED_TARGET": self.feed.target}
        self.redis = aioredis.Redis.from_url(self.redis_url)
        self.store = RedisStore(self.redis, KEEP_DAYS, "bench", 3600)
        self.offsets = KafkaOffsets(self.bootstrap, 10_000)

    def token(self, role: Role) -> tuple:
        return bearer(self.authority.mint(f"bench-{role.value}", [role], 4 * 3600))

    def stop(self) -> None:
        self.recognition.stop()
        self.engagement.stop()
        self.feed.stop()
        self.offsets.reset()
        delete_topics(self.bootstrap, list(self.topics.values()))

    def partitions(self, key: str) -> int:
        return self.specs[key].partitions

    async def ingested(self, accepted: int) -> None:
        """The feed's outbox is empty and every accepted interaction is on the topic (beside the directory)."""
        topic, partitions = self.topics["interactions"], self.partitions("interactions")
        await asyncio.to_thread(wait_until, lambda: self.feed.outbox_depth() == 0, TIMEOUT, "the outbox", 0.1)
        await asyncio.to_thread(
            wait_until, lambda: topic_size(self.bootstrap, topic, partitions) >= accepted, TIMEOUT, "the topic", 0.2
        )

    async def worker_done(self) -> None:
        topic = self.topics["interactions"]
        consumer = KafkaConsumer(bootstrap_servers=self.bootstrap)
        try:
            tps = [TopicPartition(topic, p) for p in range(self.partitions("interactions"))]
            ends = {tp.partition: end for tp, end in consumer.end_offsets(tps).items()}
        finally:
            consumer.close()
        progress = await wait_committed(self.bootstrap, self.engagement.group, topic, ends, self.engagement, TIMEOUT)
        if not progress.complete:
            raise SystemExit("the worker did not catch up:\n" + self.engagement.log_tail())

    async def cursor(self) -> int | None:
        value = await self.redis.get(ROLLED)
        return int(value) if value is not None else None

    async def publisher_done(self, samples: list[tuple[float, int | None]]) -> None:
        """Until `RedisStore.caught_up`, sampling the publisher's cursor (day) as it walks."""
        while not await self.store.caught_up():
            if not self.engagement.alive():
                raise SystemExit("engagement exited:\n" + self.engagement.log_tail())
            samples.append((time.perf_counter(), await self.cursor()))
            await asyncio.sleep(0.2)
        samples.append((time.perf_counter(), await self.cursor()))

    async def recognition_done(self) -> None:
        group = self.recognition.group
        watched = {group: [self.topics["engagement"], self.topics["interactions"]]}
        while sum(p.lag for p in (await asyncio.to_thread(self.offsets.read, [], watched)).lags) > 0:
            await asyncio.sleep(0.2)
        newest = await asyncio.to_thread(newest_score_time, self.bootstrap, self.topics["engagement"])
        while (clock := await asyncio.to_thread(self.recognition.clock)) is None or abs(clock - newest) > 1e-3:
            await asyncio.sleep(0.2)
        while sum([await self.redis.llen(k) async for k in self.redis.scan_iter(match=outbox_key("*"))]):
            await asyncio.sleep(0.2)

    def publisher_metric(self, name: str) -> float:
        body = scrape(self.engagement.publisher_metrics_port)
        return next((float(line.split()[1]) for line in body.splitlines() if line.startswith(name + " ")), 0.0)


async def import_file(system: System, history: History, state: Path) -> tuple[float, float, int, int, int, float]:
    """`catalyst import` as a subprocess; returns (seconds until its first acknowledged batch, seconds until it
    exited, interactions accepted, rows rejected, its peak resident bytes, its CPU seconds: the first child this
    process reaps, so the children's figures are its own)."""
    env = {**system.cli_env, "CATALYST_TOKEN": system.authority.mint("bench-import", [Role.SERVICE], 4 * 3600)}
    command = [sys.executable, "-m", "services.cli", "import", str(history.path), "--source", "bench"]
    checkpoint = state / "checkpoint.json"
    start = time.perf_counter()
    with (state.parent / "import.log").open("w") as log:
        process = subprocess.Popen(command + ["--state-dir", str(state)], env=env, cwd=ROOT, stdout=log, stderr=log)
        first = None
        while process.poll() is None:
            if first is None and checkpoint.exists():
                first = time.perf_counter() - start
            await asyncio.sleep(0.05)
    if process.returncode not in (0, REJECTED_EXIT):
        raise SystemExit(f"catalyst import exited with {process.returncode}; see {state.parent / 'import.log'}")
    done = json.loads(checkpoint.read_text())
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = usage.ru_utime + usage.ru_stime
    return first or 0.0, time.perf_counter() - start, done["accepted"], done["rejected"], usage.ru_maxrss * 1024, cpu


def walk(history: History, samples: list[tuple[float, int | None]], since: float) -> tuple[int, float]:
    """Person-days the publisher walked after `since` (when it was the only stage still working), and how long."""
    after = [(t, day) for t, day in samples if t >= since and day is not None]
    if len(after) < 2:
        return 0, 0.0
    (t0, d0), (t1, d1) = after[0], after[-1]
    return sum(n for day, n in history.active_by_day.items() if d0 < day <= d1), t1 - t0


async def measure(args: argparse.Namespace, system: System, history: History, workdir: Path) -> Run:
    run = Run(history)
    cpu = {"feed": sum(system.feed.cpu()[:2])}
    if args.pipelined:
        system.engagement.start()
        system.recognition.start()
    start = time.perf_counter()
    read, imported, accepted, rejected, run.import_peak_bytes, import_cpu = await import_file(
        system, history, workdir / "state"
    )
    await system.ingested(accepted)
    ingest_end = time.perf_counter()
    run.read_seconds = read
    feed_cpu = sum(system.feed.cpu()[:2]) - cpu["feed"]
    run.stages.append(
        Stage(
            "file read (`catalyst import` start until its first batch is acknowledged)",
            "interactions",
            history.interactions,
            read,
            import_cpu,
            note="CPU: the import process from start to exit, its calls included; the whole file is parsed and "
            f"sorted before the first call; the import's peak memory "
            f"{run.import_peak_bytes / 2**20:,.0f} MiB",
        )
    )
    run.stages.append(
        Stage(
            "acknowledged -> on Kafka (import calls, feed, relay)",
            "interactions",
            accepted,
            ingest_end - start - read,
            feed_cpu,
            f"the import exited {imported:.1f} s after its start; {rejected:,} rows rejected",
        )
    )
    if not args.pipelined:
        system.engagement.start_workers()
    stage_start = time.perf_counter() if not args.pipelined else start
    await system.worker_done()
    worker_end = time.perf_counter()
    run.stages.append(
        Stage(
            "worker caught up (group committed to the end)",
            "events",
            accepted,
            worker_end - stage_start,
            system.engagement.worker_cpu(),
        )
    )
    if not args.pipelined:
        system.engagement.start_publisher()
        stage_start = time.perf_counter()
    samples: list[tuple[float, int | None]] = []
    await system.publisher_done(samples)
    publisher_end = time.perf_counter()
    run.rollover_marked = system.publisher_metric("catalyst_engagement_publisher_rollover_marked_total")
    run.score_changes = system.publisher_metric("catalyst_engagement_publisher_score_changes_total")
    rounds = system.publisher_metric("catalyst_engagement_publisher_round_seconds_count")
    round_seconds = system.publisher_metric("catalyst_engagement_publisher_round_seconds_sum")
    walked, walk_seconds = walk(history, samples, worker_end)
    run.publisher_walk = f"{rounds:.0f} rounds, {round_seconds:.1f} s in rounds" + (
        f"; after the worker caught up it walked {walked:,} person-days in {walk_seconds:.1f} s"
        if args.pipelined
        else ""
    )
    run.stages.append(
        Stage(
            "publisher cursor at the watermark (`RedisStore.caught_up`)",
            "person-days",
            history.person_days,
            publisher_end - stage_start,
            system.engagement.publisher_cpu(),
            run.publisher_walk,
        )
    )
    if not args.pipelined:
        system.recognition.start()
    stage_start = time.perf_counter() if not args.pipelined else start
    await system.recognition_done()
    end = time.perf_counter()
    assert system.recognition.process is not None
    run.stages.append(
        Stage(
            "recognition settled (lag 0, sweep at the newest score, outbox empty): final badges",
            "ScoreChanged",
            int(run.score_changes),
            end - stage_start,
            cpu_seconds(system.recognition.process.pid),
        )
    )
    run.total_seconds = end - start
    run.redis_cpu_seconds = cpu_seconds(system.feed.redis_server.process.pid)
    return run


def scale(run: Run, stage: Stage) -> float:
    """The target's work over the measured work of a stage: interactions for the read, the ingest and the
    worker; person-days for the publisher, with everyone active all year (its upper bound); ScoreChanged for
    recognition, at the measured ScoreChanged per person-day."""
    person_days = TARGET["employees"] * TARGET["days"]
    target_work = {
        "interactions": TARGET["interactions"],
        "events": TARGET["interactions"],
        "person-days": person_days,
        "ScoreChanged": run.score_changes * person_days / max(1, run.history.person_days),
    }
    return target_work[stage.unit] / stage.work if stage.work else math.inf


def projection(run: Run) -> list[tuple[str, float]]:
    """Each stage's measured time scaled to the target's work."""
    return [(s.name, s.seconds * scale(run, s)) for s in run.stages]


def cpu_budget(run: Run) -> str:
    """The CPU the target's work needs in the measured processes (each stage's CPU scaled like its time, Redis
    with the interactions), against what this machine's cores give in the target's time: however well the
    stages overlap, an import cannot be faster than its CPU over the cores."""
    needed = sum(s.cpu_seconds * scale(run, s) for s in run.stages)
    needed += run.redis_cpu_seconds * TARGET["interactions"] / max(1, run.history.interactions)
    cores = os.cpu_count() or 1
    available = cores * TARGET["seconds"]
    return (
        f"CPU: the target's work needs about {needed / 60:,.0f} core-minutes in these processes and Redis alone "
        f"(the broker not counted); this machine's {cores} cores give {available / 60:,.0f} core-minutes in "
        f"{TARGET['seconds'] // 60} minutes. However well the stages overlap, the target is "
        + (
            "within reach of the CPU here."
            if needed <= available
            else f"out of reach here until the CPU per unit of work falls {needed / available:,.1f}-fold (or the "
            f"work runs on {math.ceil(needed / TARGET['seconds'])} cores or more, as far as it parallelises)."
        )
    )


def fmt_minutes(seconds: float) -> str:
    return f"{seconds / 60:.1f} min ({seconds:,.0f} s)"


def report(args: argparse.Namespace, run: Run, load_before: tuple, load_after: tuple, commit: str) -> str:
    h = run.history
    rows = projection(run)
    read, rest = rows[0][1], rows[1:]
    bound = max(rest, key=lambda r: r[1])
    if args.pipelined:
        total = bound[1]
        totals = (
            f"Projected file to final badges: {fmt_minutes(total)} (each fact's time since the import's start "
            "scaled by its stage's work; the longest)."
        )
    else:
        total = read + bound[1]
        totals = (
            f"Stages one after the other: {fmt_minutes(read + sum(x for _, x in rest))}. A real import runs them "
            f"together, but the reading comes first (nothing is sent before the whole file is parsed): at best "
            f"the read plus the slowest other stage, {fmt_minutes(total)}."
        )
    mode = "pipelined (every process running before the import)" if args.pipelined else "staged"
    lines = [
        "# History import: file -> final badges",
        "",
        f"`python -m bench.import_history {' '.join(sys.argv[1:])}` on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, "
        f"commit {commit}; {machine()}. Load average (1, 5, 15 min) before: "
        f"{', '.join(f'{x:.1f}' for x in load_before)}; after: {', '.join(f'{x:.1f}' for x in load_after)}. "
        "The machine is shared with other work.",
        "",
        "## Method",
        "",
        f"A generated history in Catalyst JSON Lines (seed {args.seed}): {len(h.employees):,} employees, {args.days} "
        f"days ending yesterday, {h.interactions:,} interactions (about {args.per_person_day} per person and "
        "working day, weekends at 15 %, 15 % of the people never active, lognormal activity among the rest); "
        f"{h.person_days:,} person-days for the publisher (people active within its {KEEP_DAYS}-day window, "
        "summed over the days). A private redis-server, fresh topics on the shared broker, the directory "
        "registered through `UpsertEmployees`, then `catalyst import` (`python -m services.cli import`, one call "
        "of 500 at a time) into `python -m services.feed` + `python -m services.feed.relay`, the engagement worker "
        "and publisher and `python -m services.recognition` with the default badge rules, each a process.",
        "",
        f"Mode: {mode}. "
        + (
            "Times run from the import's start until each fact held."
            if args.pipelined
            else "Each stage's processes start when the stage before it is done (the publisher after the "
            "worker caught up), so each time is that stage alone, its process start included."
        ),
        "The facts waited for: the import exited, the feed's outbox is empty and every accepted interaction is on "
        "the topic; the worker's group committed every partition to its end; `RedisStore.caught_up` (the "
        "publisher's cursor at the watermark's day, nothing marked); recognition's group committed everything "
        "on its input topics, its revocation clock equals the newest ScoreChanged time on the engagement topic, "
        "and its outbox is empty.",
        "",
        "## Measured",
        "",
        "| stage | work | seconds | rate | CPU s | note |",
        "|---|---|---|---|---|---|",
    ]
    for s in run.stages:
        lines.append(
            f"| {s.name} | {s.work:,} {s.unit} | {s.seconds:.1f} | {s.rate:,.0f} {s.unit}/s | {s.cpu_seconds:.1f} "
            f"| {s.note} |"
        )
    lines += [
        "",
        f"File to final badges: **{run.total_seconds:.1f} s** ({mode}). The publisher published "
        f"{run.score_changes:,.0f} ScoreChanged and marked {run.rollover_marked:,.0f} people at day rollovers.",
        "",
        f"## Projection (not measured): {TARGET['interactions']:,} interactions, {TARGET['employees']:,} people, "
        f"{TARGET['days']} days",
        "",
        "Each stage's measured rate applied to the target's work: interactions and events scale with the "
        f"interactions; the publisher's person-days with {TARGET['employees']:,} x {TARGET['days']} (everyone "
        "active all year, its upper bound); recognition's ScoreChanged with the measured ScoreChanged per "
        "person-day. It assumes the rates stay flat at 30 times the volume (Redis memory, the feed's per-source id "
        "set and the active set grow with it) and the same machine and load.",
        "",
        "| stage | projected |",
        "|---|---|",
        *(f"| {name} | {fmt_minutes(seconds)} |" for name, seconds in rows),
        "",
    ]
    verdict = "within" if total <= TARGET["seconds"] else "over"
    per_row = run.import_peak_bytes / h.interactions
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    lines += [
        totals,
        "",
        cpu_budget(run),
        "",
        f"Memory: `catalyst import` holds the whole file, its peak {per_row:,.0f} bytes per interaction (the "
        f"interpreter included); {TARGET['interactions']:,} interactions in one file would take about "
        f"{per_row * TARGET['interactions'] / 2**30:,.0f} GiB (this machine has {memory / 2**30:,.0f} GiB; "
        "with too little, a year is imported in date ranges, docs/import.md).",
        "",
        f"**What bounds it**: the file read ({fmt_minutes(read)}), then {bound[0]} ({fmt_minutes(bound[1])}); the "
        f"target is {TARGET['seconds'] // 60} minutes, the projection is {verdict} it.",
        "",
    ]
    return "\n".join(lines)


def git_commit() -> str:
    done = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    dirty = subprocess.run(["git", "status", "--porcelain", "services"], cwd=ROOT, capture_output=True, text=True)
    return done.stdout.strip() + (" (services/ with uncommitted changes)" if dirty.stdout.strip() else "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--employees", type=int, default=2_000)
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--per-person-day", type=float, default=7.5, help="interactions per person and working day")
    parser.add_argument("--seed", type=int, default=26)
    parser.add_argument("--pipelined", action="store_true", help="start every process before the import")
    parser.add_argument("--bootstrap", default=os.environ.get("CATALYST_KAFKA_BOOTSTRAP", "127.0.0.1:9092"))
    parser.add_argument("--out", type=Path, default=REPORT, help="the Markdown report ('-' writes none)")
    args = parser.parse_args()
    commit = git_commit()
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="import-bench-") as tmp:
        workdir = Path(tmp)
        (workdir / "state").mkdir()
        started = time.perf_counter()
        history = generate(workdir / "history.jsonl", args.employees, args.days, args.per_person_day, args.seed)
        print(
            f"generated {history.interactions:,} interactions, {history.person_days:,} person-days "
            f"in {time.perf_counter() - started:.1f} s",
            file=sys.stderr,
        )
        system = System(args, workdir)
        try:
            register(system.feed.target, history.employees, system.token(Role.HR))
            wait_until(lambda: system.feed.outbox_depth() == 0, 120, "the directory events to go out")
            run = asyncio.run(measure(args, system, history, workdir))
        finally:
            system.stop()
    text = report(args, run, load_before, os.getloadavg(), commit)
    print(text)
    if str(args.out) != "-":
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
        print(f"report: {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
