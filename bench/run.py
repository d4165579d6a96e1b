"""`python -m bench.run`: the engagement benchmark, in one go on one topic and one machine.

1. load N events into a fresh 6-partition topic;
2. raw aiokafka consume-and-discard ceiling, then the naive per-event-Redis consumer;
3. the Catalyst worker and the ScoreChanged publisher as subprocesses (own group, ports, private Redis): time
   until every partition is committed to the end, CPU seconds of each from /proc, Redis memory per employee
   with state once the publisher has drained the dirty set (or five minutes later, its queue included);
4. latency: a fixed offered load (12,500 events/s, the target's), p50/p99 from the worker's histogram;
5. bench/results/report.md + report.json with PASS/FAIL against the targets.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import cpus, events, kafka_io, report, stats
from bench.consumers import drain, naive, raw_ceiling
from bench.cores import kept_off, split
from bench.processes import cpu_seconds, threads_cpu_seconds
from bench.redis_instance import RedisInstance
from bench.worker import WorkerProcess
from services.engagement.adapters.redis_store import DIRTY, TAKING, WATERMARK

RESULTS = Path(__file__).resolve().parent / "results"
BROKER_PIDFILE = (
    Path(os.environ.get("CATALYST_RUN_DIR", Path(__file__).resolve().parent.parent / ".run")) / "kafka" / "kafka.pid"
)
HISTOGRAM = "catalyst_engagement_event_to_score_seconds"
BATCHES = "catalyst_engagement_batch_events"
HANDLE = "catalyst_engagement_batch_seconds"
EVENTS = "catalyst_engagement_events_total"
SCORE_CHANGES = "catalyst_engagement_publisher_score_changes_total"
QUICK_LATENCY_RATE = 1_000.0  # offered events/s in a --quick run's latency phase


@dataclass(frozen=True)
class Options:
    events: int
    employees: int
    departments: int
    days: int
    partitions: int
    naive_events: int
    latency_seconds: float
    bootstrap: str
    out: Path
    quick: bool
    profile_seconds: float
    budget_seconds: float
    worker_env: dict[str, str]
    workers: int
    latency_rate: float | None
    warmup_seconds: float
    broker_warmup_rounds: int
    dedicated_core: bool


def parse(argv: list[str] | None = None) -> Options:
    env = os.environ.get
    p = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n")[0])
    p.add_argument(
        "--quick", action="store_true",
        help="small smoke run (20,000 events, a short latency phase at a low rate)",
    )  # fmt: skip
    p.add_argument("--events", type=int, default=None, help="events to load (default 1,000,000; env BENCH_EVENTS)")
    p.add_argument("--employees", type=int, default=None, help="distinct employees (default 20,000)")
    p.add_argument("--departments", type=int, default=12)
    p.add_argument("--days", type=int, default=100, help="days of event time the history spans")
    p.add_argument("--partitions", type=int, default=6)
    p.add_argument(
        "--workers", type=int, default=int(env("BENCH_WORKERS", "1")),
        help="worker processes in the group (scale-out by partitions; default 1)",
    )  # fmt: skip
    p.add_argument(
        "--naive-events", type=int, default=None, help="events the naive consumer processes (default min(N, 100,000))"
    )
    p.add_argument("--latency-seconds", type=float, default=None, help="latency phase length (default 20)")
    p.add_argument(
        "--latency-rate", type=float, default=None,
        help=f"offered events/s in the latency phase (default {report.LATENCY_RATE:,.0f}, the target's; "
        f"--quick {QUICK_LATENCY_RATE:,.0f}): the p99 target is judged at the default only",
    )  # fmt: skip
    p.add_argument(
        "--warmup-seconds", type=float, default=None,
        help="the same load offered this long before the latency phase, not measured (default 30; --quick 1)",
    )  # fmt: skip
    p.add_argument(
        "--broker-warmup-rounds", type=int, default=None,
        help="most rounds of the broker's own warm-up, until its JIT compilers are quiet (default 30; --quick 2)",
    )  # fmt: skip
    p.add_argument(
        "--dedicated-core", action=argparse.BooleanOptionalAction, default=env("BENCH_DEDICATED_CORE", "1") != "0",
        help="the worker process gets a CPU of its own, everything else the others (default on; bench/cores.py)",
    )  # fmt: skip
    p.add_argument("--bootstrap", default=env("CATALYST_KAFKA_BOOTSTRAP", "127.0.0.1:9092"))
    p.add_argument("--out", type=Path, default=Path(env("BENCH_OUT", str(RESULTS))))
    p.add_argument(
        "--profile-seconds", type=float, default=float(env("BENCH_PROFILE_SECONDS", "0")),
        help="record the worker with py-spy this long during the throughput run (0: off)",
    )  # fmt: skip
    p.add_argument(
        "--budget-seconds", type=float, default=float(env("BENCH_BUDGET_SECONDS", "900")),
        help="longest the worker may take for the loaded events; after that the run is reported as partial",
    )  # fmt: skip
    p.add_argument(
        "--worker-env", action="append", default=[], metavar="NAME=VALUE",
        help="extra environment for the worker and the publisher, e.g. CATALYST_WORKER_BATCH_SIZE=2000 (repeatable)",
    )  # fmt: skip
    a = p.parse_args(argv)
    bad = [item for item in a.worker_env if "=" not in item]
    if bad:
        p.error(f"--worker-env needs NAME=VALUE, got {bad}")
    quick = a.quick
    n = a.events or int(env("BENCH_EVENTS", "20000" if quick else "1000000"))
    employees = a.employees or (min(2_000, max(10, n // 10)) if quick else 20_000)
    return Options(
        events=n,
        employees=employees,
        departments=a.departments,
        days=a.days,
        partitions=a.partitions,
        naive_events=a.naive_events or min(n, 100_000),
        latency_seconds=a.latency_seconds or (5.0 if quick else 20.0),
        bootstrap=a.bootstrap,
        out=a.out,
        quick=quick,
        profile_seconds=a.profile_seconds,
        budget_seconds=a.budget_seconds,
        worker_env=dict(item.split("=", 1) for item in a.worker_env),
        workers=a.workers,
        latency_rate=a.latency_rate,
        warmup_seconds=a.warmup_seconds if a.warmup_seconds is not None else (1.0 if quick else 30.0),
        broker_warmup_rounds=a.broker_warmup_rounds if a.broker_warmup_rounds is not None else (2 if quick else 30),
        dedicated_core=a.dedicated_core,
    )


def log(message: str) -> None:
    print(f"[bench {datetime.now(UTC):%H:%M:%S}] {message}", flush=True)


@dataclass(frozen=True)
class Progress:
    at: float  # perf_counter when seen
    committed: int  # records committed by the group
    complete: bool  # every partition committed to its end


async def wait_committed(
    bootstrap: str, group: str, topic: str, ends: dict[int, int], worker: WorkerProcess, budget: float
) -> Progress:
    """Polls until the group committed every partition to its end, or the budget is spent."""
    deadline = time.monotonic() + budget
    while True:
        if not worker.alive():
            raise SystemExit("the worker exited during the benchmark:\n" + worker.log_tail())
        try:
            done = await kafka_io.committed(bootstrap, group, topic)
        except Exception:
            done = {}
        count = sum(min(done.get(p, 0), end) for p, end in ends.items())
        complete = all(done.get(p, 0) >= end for p, end in ends.items())
        if complete or time.monotonic() > deadline:
            return Progress(time.perf_counter(), count, complete)
        await asyncio.sleep(0.5)


def metrics(worker: WorkerProcess) -> dict:
    """The workers' and the publisher's samples added up (counters and histogram buckets are sums across
    workers; the publisher's names are its own)."""
    out: dict = {}
    for port in worker.all_metrics_ports:
        try:
            samples = stats.scrape(port)
        except OSError:
            continue
        for key, value in samples.items():
            out[key] = out.get(key, 0.0) + value
    return out


async def measure_worker(
    o: Options, topics: dict[str, str], ends: dict[int, int], worker: WorkerProcess, workdir: Path
) -> dict[str, Any]:
    loaded = sum(ends.values())
    spawned = time.perf_counter()
    worker.start()
    first_at = processed_at = None
    first_cpu = (0.0, 0.0)  # the worker's and the publisher's
    profiler = None
    committed_task = asyncio.create_task(
        wait_committed(o.bootstrap, worker.group, topics["interactions"], ends, worker, o.budget_seconds)
    )
    while not committed_task.done():
        samples = await asyncio.to_thread(metrics, worker)
        seen = stats.total(samples, EVENTS)
        now = time.perf_counter()
        if first_at is None and seen > 0:
            first_at, first_cpu = now, (worker.worker_cpu(), worker.publisher_cpu())
            if o.profile_seconds > 0:
                profiler = start_profiler(worker.pid, o.profile_seconds, workdir / "profile.txt")
        if processed_at is None and seen >= loaded:
            processed_at = now
        await asyncio.wait([committed_task], timeout=1.0)  # scraping more often would load the worker
    progress: Progress = committed_task.result()
    done_at, done_worker_cpu, done_publisher_cpu = progress.at, worker.worker_cpu(), worker.publisher_cpu()
    if first_at is None:
        first_at = spawned
    worker_cpu, publisher_cpu = done_worker_cpu - first_cpu[0], done_publisher_cpu - first_cpu[1]
    samples = await asyncio.to_thread(metrics, worker)
    measured = report.Measured(
        "Catalyst engagement worker" + (f" x {worker.count} processes" if worker.count > 1 else "") + " + publisher",
        progress.committed,
        done_at - first_at,
        worker_cpu + publisher_cpu,
    )
    per_million = 1e6 / max(1, progress.committed)
    detail = {
        "startup_seconds": first_at - spawned,
        "spawn_to_committed_seconds": done_at - spawned,
        "processed_seconds": (processed_at or done_at) - first_at,
        "cpu_seconds_total": done_worker_cpu + done_publisher_cpu,
        "worker_cpu_seconds": worker_cpu,
        "publisher_cpu_seconds": publisher_cpu,
        "worker_cpu_seconds_per_million": worker_cpu * per_million,
        "publisher_cpu_seconds_per_million": publisher_cpu * per_million,
        "score_changes": stats.total(samples, SCORE_CHANGES),
        "batches": stats.total(samples, BATCHES + "_count"),
        "batch_seconds": stats.total(samples, HANDLE + "_sum"),
        "complete": progress.complete,
        "loaded": loaded,
        "group": worker.group,
    }
    profile = finish_profiler(profiler, workdir / "profile.txt")
    return {"measured": measured, "detail": detail, "profile": profile}


def start_profiler(pid: int, seconds: float, out: Path) -> subprocess.Popen | None:
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(spy).exists():
        log("py-spy not found; no profile")
        return None
    args = [spy, "record", "--pid", str(pid), "--duration", str(int(seconds)), "--rate", "50"]
    args += ["--format", "raw", "--output", str(out), "--nonblocking"]
    return subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def finish_profiler(profiler: subprocess.Popen | None, out: Path, top: int = 25) -> list[str]:
    """Waits for py-spy and summarises its collapsed stacks: the functions holding the most samples."""
    if profiler is None:
        return []
    try:
        _, err = profiler.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        profiler.kill()
        return ["py-spy did not finish"]
    if not out.exists():
        return [f"py-spy failed: {err.decode(errors='replace').strip()[:300]}"]
    inclusive: Counter[str] = Counter()
    leaf: Counter[str] = Counter()
    total = 0
    for line in out.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = stack.split(";")
        for frame in set(frames):
            inclusive[frame] += n
        leaf[frames[-1]] += n
    lines = [f"{total} samples; inclusive (function and what it calls):"]
    lines += [f"  {100 * n / total:5.1f}%  {frame}" for frame, n in inclusive.most_common(top)]
    lines += ["self (the frame itself on top of the stack):"]
    lines += [f"  {100 * n / total:5.1f}%  {frame}" for frame, n in leaf.most_common(top)]
    return lines


async def wait_published(redis: RedisInstance, timeout: float) -> None:
    """The publisher indexes leaderboards and the active set as it publishes the worker's dirty marks; memory is
    measured once the dirty and taking sets are empty, or after `timeout`: a publisher walking a history's days
    one by one (docs/decisions/0022) marks everyone active again for each day, and its queue, at most one entry
    per employee, is then counted in the figure."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if redis.client.zcard(DIRTY) + redis.client.zcard(TAKING) == 0:
            return
        await asyncio.sleep(0.5)
    log("the publisher is still walking the days; measuring memory with its queue")


STATE_KEYS = "{emp:*}"  # an employee's state hash, `{emp:<id>}` (not its `:gone` marker)


def key_sample(redis: RedisInstance, size: int = 200) -> dict[str, Any]:
    """Memory, encoding and field count of a sample of employees' state hashes."""
    keys = []
    for key in redis.client.scan_iter(match=STATE_KEYS, count=5000):
        keys.append(key)
        if len(keys) >= size:
            break
    rows = []
    for key in keys:
        pipe = redis.client.pipeline(transaction=False)
        pipe.memory_usage(key, samples=0)
        pipe.object("encoding", key)
        pipe.hlen(key)
        rows.append(pipe.execute())
    if not rows:
        return {}
    n = len(rows)
    return {
        "sample_employees": n,
        "sample_state_hash_bytes": sum(r[0] or 0 for r in rows) / n,
        "sample_state_fields": sum(r[2] for r in rows) / n,
        "sample_share_compact_encoding": sum(1 for r in rows if r[1] in (b"listpack", b"ziplist")) / n,
    }


FAMILIES = (
    ("state hashes", b"{emp:", b"}"),
    ("leaderboards", b"eng:lb:", b""),
    ("department sets", b"{dept:", b""),
    ("other indexes", b"eng:", b""),  # watermark, departments, active employees
    ("other indexes", b"{eng:", b""),  # the dirty and taking sets
)


def memory_by_family(redis: RedisInstance) -> dict[str, int]:
    """MEMORY USAGE summed per key family (what the per-employee figure is made of)."""
    totals = dict.fromkeys([name for name, _, _ in FAMILIES] + ["other"], 0)  # forgotten markers are "other"
    batch: list[bytes] = []

    def flush() -> None:
        pipe = redis.client.pipeline(transaction=False)
        for key in batch:
            pipe.memory_usage(key, samples=0)
        for key, used in zip(batch, pipe.execute(), strict=True):
            family = next((n for n, head, tail in FAMILIES if key.startswith(head) and key.endswith(tail)), "other")
            totals[family] += used or 0
        batch.clear()

    for key in redis.client.scan_iter(count=5000):
        batch.append(key)
        if len(batch) >= 2000:
            flush()
    flush()
    return totals


async def start_fresh_worker(worker: WorkerProcess, partitions: int) -> None:
    """Starts the workers (in a new group, at the end of the topic) and waits until they own every partition."""
    worker.start()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if not worker.alive():
            raise SystemExit("the latency worker exited:\n" + worker.log_tail())
        healths = [await asyncio.to_thread(stats.health, port) for port in worker.web_ports]
        owned = sum(len(h.get("partitions", [])) for h in healths)
        if all(h.get("status") == "ok" for h in healths) and owned == partitions:
            await asyncio.sleep(2)  # let the first fetches position the consumer at the end
            return
        await asyncio.sleep(1)
    raise SystemExit("the latency worker did not become ready:\n" + worker.log_tail())


def broker_pid() -> int | None:
    """The local broker's process (deploy/kafka/kafka.sh), when this machine runs it: its CPU is reported."""
    try:
        pid = int(BROKER_PIDFILE.read_text())
        cpu_seconds(pid)
    except (OSError, ValueError):
        return None
    return pid


WARMUP_ROUND_SECONDS = 10.0
JIT_THREADS = ("C1 CompilerThre", "C2 CompilerThre")  # HotSpot's JIT compiler threads, as Linux names them
JIT_QUIET = 0.02  # the broker's JIT compilers used at most this share of a core in each of two rounds in a row
WARMUP_SETTLED = 0.25  # the broker's CPU per event moved by at most this share from one round to the next
WARMUP_MAX_ROUNDS_FACTOR = 4  # at most this many times the minimum warm-up


async def warm_broker(o: Options, topics: dict[str, str], rate: float, first_second: int) -> list[float]:
    """The latency phase's load on a topic of its own, drained by a plain consumer, until the broker's JIT
    compilers are quiet two rounds in a row; returns their share of a core in each round (empty when the broker
    runs elsewhere).

    A broker started for the run keeps compiling for minutes under this load: its C2 compiler thread took
    0.5-0.9 of a core in bursts of up to a second, a third of the broker's CPU in a 20 s phase that began after
    a 40 s warm-up, and the phase's worst latencies fell into those bursts (docs/benchmark.md). A broker in
    service compiled long ago. The worker's own warm-up (`warm_up`) cannot simply last longer: each of its events
    lands in the same day of the worker's state, so minutes of it would measure employees with hundreds of
    interactions a day. Rounds as long as the worker's (at least a second), at most `--broker-warmup-rounds`."""
    broker = broker_pid()
    if broker is None or o.broker_warmup_rounds <= 0:
        return []
    round_seconds = min(max(o.warmup_seconds, 1.0), WARMUP_ROUND_SECONDS)
    stop = asyncio.Event()
    draining = asyncio.ensure_future(drain(o.bootstrap, topics["warmup"], stop))
    shares: list[float] = []
    log(f"broker warm-up: offering {rate:,.0f} events/s to a topic of its own until its JIT compilers are quiet")
    records = events.live(max(1, int(rate * round_seconds)), o.employees, o.departments, first_second, tag="broker")
    try:
        for _ in range(o.broker_warmup_rounds):
            jit, started = threads_cpu_seconds(broker, JIT_THREADS), time.monotonic()
            await kafka_io.produce_at_rate(o.bootstrap, topics["warmup"], records, rate)
            shares.append((threads_cpu_seconds(broker, JIT_THREADS) - jit) / (time.monotonic() - started))
            if quiet(shares):
                break
    finally:
        stop.set()
        await draining
    log("broker warm-up: its JIT compilers' share of a core by round: " + ", ".join(f"{s:.2f}" for s in shares))
    return shares


async def warm_up(
    o: Options, topics: dict[str, str], worker: WorkerProcess, rate: float, first_second: int
) -> list[float]:
    """The latency phase's load, unmeasured, until the broker (when it runs here) has settled and the worker has
    handled it all; returns the broker's CPU-µs per event in each round. A broker started for the run still
    compiles its small-request paths when this load begins: offering 19,400 events/s to a fresh broker, its
    CPU per event in rounds of 10 s was 34, 39, 29, 12, 8, 9, 16, 8, 7 µs (docs/benchmark.md). A broker in
    service has long compiled them, and the latency figure describes a steady state, so the warm-up runs in
    rounds of 10 s, at least `--warmup-seconds`, until a round's broker CPU per event is within 25 % of the
    round before (at most four times the minimum)."""
    broker = broker_pid()
    round_seconds = min(o.warmup_seconds, WARMUP_ROUND_SECONDS)
    least = max(1, math.ceil(o.warmup_seconds / round_seconds))
    costs: list[float] = []
    log(f"warm-up: offering {rate:,.0f} events/s for at least {o.warmup_seconds:g} s (not measured)")
    for n in range(least * WARMUP_MAX_ROUNDS_FACTOR):
        count = max(1, int(rate * round_seconds))
        records = events.live(count, o.employees, o.departments, first_second, seed=12 + n, tag=f"warm{n}")
        before = cpu_seconds(broker) if broker else 0.0
        sent, _, _ = await kafka_io.produce_at_rate(o.bootstrap, topics["interactions"], records, rate)
        if broker:
            costs.append((cpu_seconds(broker) - before) / max(1, sent) * 1e6)
        if n + 1 >= least and (not broker or settled(costs)):
            break
    if costs:
        log("warm-up: the broker's CPU-µs per event by round: " + ", ".join(f"{c:.0f}" for c in costs))
    ends = await kafka_io.end_offsets(o.bootstrap, topics["interactions"])
    await wait_committed(o.bootstrap, worker.group, topics["interactions"], ends, worker, o.budget_seconds)
    return costs


def quiet(shares: list[float]) -> bool:
    """True when the broker's JIT compilers used at most JIT_QUIET of a core in each of the last two rounds (one
    quiet round can be a lull)."""
    return len(shares) >= 2 and max(shares[-2:]) <= JIT_QUIET


def settled(costs: list[float]) -> bool:
    """True when the last round's cost is within WARMUP_SETTLED of the round before."""
    return len(costs) >= 2 and abs(costs[-1] - costs[-2]) <= WARMUP_SETTLED * max(costs[-2], 1e-9)


def latency_rate(o: Options) -> tuple[float, str]:
    """The offered rate of the latency phase and where it comes from: fixed, so runs and changes compare at
    one load (the target's), not at a share of a measured rate that moves with them."""
    if o.latency_rate:
        return o.latency_rate, "--latency-rate"
    if o.quick:
        return QUICK_LATENCY_RATE, "--quick"
    return report.LATENCY_RATE, "the target's fixed rate"


async def latency(
    o: Options, topics: dict[str, str], worker: WorkerProcess, redis: RedisInstance, watermark_ms: int
) -> dict[str, Any]:
    """Steady state: event times in the two hours before the watermark, so no day boundary is crossed (a
    crossing makes the publisher re-publish every active employee; see docs/benchmark.md)."""
    offered, offered_by = latency_rate(o)
    first_second = watermark_ms // 1000 - 7200
    jit_shares = await warm_broker(o, topics, offered, first_second) if o.warmup_seconds > 0 else []
    warm_up_costs = await warm_up(o, topics, worker, offered, first_second) if o.warmup_seconds > 0 else []
    count = max(1, int(offered * o.latency_seconds))
    records = events.live(count, o.employees, o.departments, first_second)
    samples_before = await asyncio.to_thread(metrics, worker)
    before = stats.buckets(samples_before, HISTOGRAM)
    cpu_before, publisher_before = worker.worker_cpu(), worker.publisher_cpu()
    broker = broker_pid()
    others_before = [cpu_seconds(pid) if pid else 0.0 for pid in (redis.process.pid, broker)]
    commands_before = redis.command_stats()
    log(f"latency phase: offering {offered:,.0f} events/s for {o.latency_seconds:g} s")
    sent, seconds, generator_cpu = await kafka_io.produce_at_rate(o.bootstrap, topics["interactions"], records, offered)
    ends = await kafka_io.end_offsets(o.bootstrap, topics["interactions"])
    progress = await wait_committed(o.bootstrap, worker.group, topics["interactions"], ends, worker, o.budget_seconds)
    if not progress.complete:
        log("the worker did not catch up with the latency phase within the budget")
    cpu, publisher_cpu = worker.worker_cpu() - cpu_before, worker.publisher_cpu() - publisher_before
    redis_cpu, broker_cpu = (
        cpu_seconds(pid) - before if pid else None
        for pid, before in zip((redis.process.pid, broker), others_before, strict=True)
    )
    commands = stats.command_costs(commands_before, redis.command_stats(), sent)
    samples_after = await asyncio.to_thread(metrics, worker)
    after = stats.buckets(samples_after, HISTOGRAM)
    window = stats.delta(after, before)
    batches = stats.grown(samples_after, samples_before, BATCHES + "_count")
    handling = stats.grown(samples_after, samples_before, HANDLE + "_sum")
    p50, p99 = stats.quantile(window, 0.5), stats.quantile(window, 0.99)
    return {
        "offered_rate": offered,
        "offered_by": offered_by,
        "warmup_seconds": o.warmup_seconds,
        "warmup_broker_cpu_us_per_event": warm_up_costs,
        "broker_warmup_jit_shares": jit_shares,
        "seconds": seconds,
        "events": sent,
        "achieved_rate": sent / seconds if seconds else 0.0,
        "samples": window.get(math.inf, 0.0),
        "p50_ms": p50 * 1000,
        "p99_ms": p99 * 1000,
        # steady state, for comparison with the backfill: CPU per event and how many records a batch carried
        "worker_cpu_us_per_event": cpu / sent * 1e6 if sent else 0.0,
        "publisher_cpu_us_per_event": publisher_cpu / sent * 1e6 if sent else 0.0,
        "mean_batch_events": sent / batches if batches else 0.0,
        "mean_batch_ms": handling / batches * 1000 if batches else 0.0,
        "handling_share": handling / seconds if seconds else 0.0,
        # what else the phase cost: ScoreChanged published, Redis and the broker (None: not on this machine)
        "score_changes": stats.grown(samples_after, samples_before, SCORE_CHANGES),
        "redis_cpu_us_per_event": redis_cpu / sent * 1e6 if sent and redis_cpu is not None else None,
        "broker_cpu_us_per_event": broker_cpu / sent * 1e6 if sent and broker_cpu is not None else None,
        "generator_cpu_us_per_event": generator_cpu / sent * 1e6 if sent else 0.0,
        "redis_commands": commands,
        "buckets": {("+Inf" if math.isinf(le) else f"{le:g}"): n for le, n in sorted(window.items())},
    }


async def run(o: Options) -> dict[str, Any]:
    started = datetime.now(UTC)
    workdir = Path(tempfile.mkdtemp(prefix="catalyst-bench-"))
    topics = kafka_io.create_bench_topics(o.bootstrap, o.partitions)
    topic = topics["interactions"]
    redis = RedisInstance(workdir / "redis")
    worker: WorkerProcess | None = None
    cores = split() if o.dedicated_core and o.workers == 1 else None
    pinning = {"worker_cpus": cores.worker, "publisher_cpus": cores.others} if cores else {}
    affinity: dict[str, str] = {}
    stack = contextlib.ExitStack()
    try:
        log(f"loading {o.events:,} events into {topic}")
        t = time.perf_counter()
        loaded = await kafka_io.load(o.bootstrap, topic, events.history(o.events, o.employees, o.departments, o.days))
        load_seconds = time.perf_counter() - t
        ends = await kafka_io.end_offsets(o.bootstrap, topic)
        log(f"loaded {loaded:,} events in {load_seconds:.1f} s; raw consumer ceiling")
        raw = await raw_ceiling(o.bootstrap, topic, loaded)
        log(f"raw: {raw.rate:,.0f} events/s; naive consumer over {min(o.naive_events, loaded):,} events")
        naive_run = await naive(o.bootstrap, topic, redis.url, min(o.naive_events, loaded))
        log(f"naive: {naive_run.rate:,.0f} events/s; Catalyst worker")
        redis.client.flushall()
        base_memory = redis.used_memory()
        if cores is not None:
            log(f"the worker runs on CPU {cpus.text(cores.worker)}, everything else on the others")
            stack.enter_context(kept_off(cores, [pid for pid in (redis.process.pid, broker_pid()) if pid]))
        worker = WorkerProcess(o.bootstrap, topics, redis.url, workdir / "worker", o.worker_env, o.workers, **pinning)
        result = await measure_worker(o, topics, ends, worker, workdir)
        affinity = worker.affinity()
        measured: report.Measured = result["measured"]
        log(f"worker: {measured.rate:,.0f} events/s; waiting for the publisher, then memory")
        complete = result["detail"]["complete"]
        await wait_published(redis, 300 if complete else 30)
        employees = redis.count(STATE_KEYS)
        memory_delta = redis.used_memory() - base_memory
        watermark = int(redis.client.get(WATERMARK) or 0)
        covered_days = max(0.0, (watermark / 1000 - events.START) / events.DAY)
        memory_detail = {**key_sample(redis), "bytes_by_family": memory_by_family(redis)}
        if not complete:
            log(f"the worker committed {measured.events:,} of {loaded:,} events within the budget; latency is")
            log("measured with a fresh worker group that starts at the end of the topic (same Redis state)")
            worker.stop()
            env = {**o.worker_env, "CATALYST_WORKER_OFFSET_RESET": "latest"}
            worker = WorkerProcess(
                o.bootstrap, topics, redis.url, workdir / "worker-latency", env, o.workers, **pinning
            )
            await start_fresh_worker(worker, o.partitions)
        lat = await latency(o, topics, worker, redis, int(redis.client.get(WATERMARK) or 0))
        lat["fresh_worker_at_end_of_topic"] = not complete
        log(f"latency: p50 {lat['p50_ms']:.1f} ms, p99 {lat['p99_ms']:.1f} ms")
    finally:
        if worker is not None:
            worker.stop()
        stack.close()
        redis.stop()
        try:
            kafka_io.drop_bench_topics(o.bootstrap, topics)
        except Exception as exc:
            log(f"could not delete the bench topics: {exc}")
        shutil.rmtree(workdir, ignore_errors=True)

    per_employee = memory_delta / employees if employees else math.nan
    result_targets = report.targets(
        measured.rate,
        naive_run.rate,
        lat["p99_ms"] / 1000,
        lat["offered_rate"],
        per_employee,
        result["detail"]["worker_cpu_seconds_per_million"],
    )
    return {
        "config": {
            "events": o.events,
            "employees": o.employees,
            "departments": o.departments,
            "days": o.days,
            "partitions": o.partitions,
            "naive_events": naive_run.events,
            "latency_seconds": o.latency_seconds,
            "bootstrap": o.bootstrap,
            "topic": topic,
            "quick": o.quick,
            "worker_env": o.worker_env,
            "workers": o.workers,
            "cores": {**cores.as_dict(), **affinity} if cores else None,
        },
        "environment": {
            "started_at": started.isoformat(timespec="seconds"),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "load_average_at_end": os.getloadavg()[0],
        },
        "load": {"events": loaded, "seconds": load_seconds, "events_per_second": loaded / load_seconds},
        "runs": {"raw": raw.as_dict(), "naive": naive_run.as_dict(), "worker": measured.as_dict()},
        "worker_detail": result["detail"],
        "ratios": {
            "worker_over_naive": measured.rate / naive_run.rate if naive_run.rate else 0.0,
            "worker_over_raw": measured.rate / raw.rate if raw.rate else 0.0,
            "naive_over_raw": naive_run.rate / raw.rate if raw.rate else 0.0,
        },
        "latency": lat,
        "memory": {
            "used_memory_delta": memory_delta,
            "employees_with_state": employees,
            "bytes_per_employee": per_employee,
            "days_of_history_covered": covered_days,
            **memory_detail,
        },
        "targets": [t.__dict__ for t in result_targets],
        "profile": result["profile"],
    }


async def run_cancellable(o: Options) -> dict[str, Any]:
    """SIGTERM/SIGINT cancel the run, so the worker, Redis and the bench topics are still cleaned up."""
    task = asyncio.current_task()
    assert task is not None
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, task.cancel)
    return await run(o)


def main(argv: list[str] | None = None) -> None:
    options = parse(argv)
    try:
        result = asyncio.run(run_cancellable(options))
    except asyncio.CancelledError:
        raise SystemExit("benchmark interrupted; cleaned up") from None
    md, js = report.write(result, options.out)
    log(f"report written to {md} and {js}")
    for t in result["targets"]:
        log(f"{report.verdict(t)}  {t['name']}: {t['value']:.1f} (wanted {t['wanted']})")


if __name__ == "__main__":
    main()
