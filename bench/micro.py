"""`python -m bench.micro`: where the engagement service's time goes per event, stage by stage, without Kafka or
faust.

Runs the worker's and the publisher's own code in this process against a private redis-server: the batch plan
(`worker/handler.plan`: decode, check, map to merges), the store write (`RedisStore.apply` and the department
memberships), then per published employee the state read, `model.figures`, the ScoreChanged encoding and the
leaderboard writes. Reports CPU microseconds per event (client side and Redis side separately), for a backfill
in the worker's batch size and for a steady state in a live stream's smaller batches. Complements the py-spy
profile of `python -m bench.run --profile-seconds N`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
import zlib
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from bench import events
from bench.redis_instance import RedisInstance
from services.common.redis_client import connect
from services.engagement.adapters.redis_store import Board, RedisStore
from services.engagement.model.config import ScoringModel, load_model
from services.engagement.model.figures import TOTAL, figures
from services.engagement.model.state import DAY_MS
from services.engagement.publisher.publisher import score_changed
from services.engagement.worker.handler import Plan, Record, plan
from services.engagement.worker.settings import EngagementWorkerSettings

READ_CHUNK = 200  # employees per publisher round trip (its default chunk)


def redis_cpu(instance: RedisInstance) -> float:
    info = instance.client.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def as_records(pairs: Iterable[tuple[bytes, bytes]], partitions: int, offsets: dict[int, int]) -> list[Record]:
    """Records as the consumer hands them over: partitioned by key, offsets counting on per partition."""
    records = []
    for key, value in pairs:
        p = zlib.crc32(key) % partitions
        records.append(Record(p, offsets[p], key, value, int(time.time() * 1000)))
        offsets[p] += 1
    return records


async def write(store: RedisStore, work: Plan) -> None:
    """What the worker's handler writes for a batch without dead letters or erasures."""
    if work.writes or work.activity:
        await store.apply(work.writes, work.activity, work.newest_ms)
    if work.registered:
        await store.sync_memberships(sorted(work.registered))


async def stream(
    store: RedisStore, instance: RedisInstance, records: Sequence[Record], batch: int, max_future_ms: int
) -> dict[str, float]:
    """Plans and writes `records` in batches of `batch`, one after the other; CPU and wall per event."""
    count = max(1, len(records))
    planned, written, rcpu, wall = 0.0, 0.0, redis_cpu(instance), time.perf_counter()
    for i in range(0, len(records), batch):
        cpu = time.process_time()
        work = plan(records[i : i + batch], int(time.time() * 1000), max_future_ms)
        planned += time.process_time() - cpu
        cpu = time.process_time()
        await write(store, work)
        written += time.process_time() - cpu
    return {
        "plan_us_per_event": planned / count * 1e6,
        "write_client_cpu_us_per_event": written / count * 1e6,
        "write_redis_cpu_us_per_event": (redis_cpu(instance) - rcpu) / count * 1e6,
        "wall_us_per_event": (time.perf_counter() - wall) / count * 1e6,
    }


async def publish(
    store: RedisStore, instance: RedisInstance, model: ScoringModel, employees: Sequence[str]
) -> dict[str, Any]:
    """The publisher's work per employee: read the state, compute the figures, encode ScoreChanged, index the
    leaderboards (publishing to Kafka left out)."""
    watermark = await store.watermark()
    day = watermark // DAY_MS
    sizes = (model.leaderboards.size, model.leaderboards.department_size)
    read = compute = encode = index = index_redis = 0.0
    published = 0
    for start in range(0, len(employees), READ_CHUNK):
        chunk = employees[start : start + READ_CHUNK]
        cpu = time.process_time()
        states = await store.read_states(chunk)
        read += time.process_time() - cpu
        present = {e: s for e, s in states.items() if s is not None}
        cpu = time.process_time()
        computed = {e: figures(s, max(s.top, day), model) for e, s in present.items()}
        compute += time.process_time() - cpu
        cpu = time.process_time()
        for e, f in computed.items():
            s = present[e]
            as_of = max(s.top, day)
            score_changed(e, s.department, s.opt_out, (as_of << 32) | s.changes, f.windows, f.signals, watermark)
        encode += time.process_time() - cpu
        windows = model.leaderboards.windows
        boards = [
            Board(e, present[e].department, not present[e].opt_out, {w: f.windows[w][TOTAL] for w in windows})
            for e, f in computed.items()
        ]
        tops = {e: s.top for e, s in present.items()}
        cpu, rcpu = time.process_time(), redis_cpu(instance)
        await store.published([], boards, tops, sizes)
        index += time.process_time() - cpu
        index_redis += redis_cpu(instance) - rcpu
        published += len(present)
    n = max(1, published)
    return {
        "employees_with_state": published,
        "per_employee_us": {
            "read_state": read / n * 1e6,
            "figures": compute / n * 1e6,
            "encode_score_changed": encode / n * 1e6,
            "leaderboards_client": index / n * 1e6,
            "leaderboards_redis": index_redis / n * 1e6,
        },
    }


async def measure(
    count: int, employees: int, batch: int, partitions: int, live: int, live_batch: int
) -> dict[str, Any]:
    model = load_model()
    max_future_ms = int(model.limits.max_future_skew_hours * 3_600_000)
    instance = RedisInstance(Path(tempfile.mkdtemp(prefix="catalyst-micro-")) / "redis")
    client = connect(instance.url)
    store = RedisStore(client, model.keep_days, "bench", 86_400)
    offsets = dict.fromkeys(range(partitions), 0)
    out: dict[str, Any] = {"events": count, "employees": employees, "batch": batch}
    try:
        await store.load_scripts()
        history = as_records(events.history(count, employees), partitions, offsets)
        out["backfill"] = await stream(store, instance, history, batch, max_future_ms)
        # steady state: events just before the watermark, in the smaller batches a live stream arrives in
        first_second = await store.watermark() // 1000 - 7200
        records = as_records(events.live(live, employees, 12, first_second), partitions, offsets)
        out["live"] = {"events": live, "batch": live_batch}
        out["live"] |= await stream(store, instance, records, live_batch, max_future_ms)
        names = [events.employee_id(n) for n in range(employees)]
        out["publish"] = await publish(store, instance, model, names)
    finally:
        await store.batch.close()
        await client.aclose()
        instance.stop()
    return out


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.micro", description=__doc__.split("\n")[0])
    p.add_argument("--events", type=int, default=100_000)
    p.add_argument("--employees", type=int, default=2_000)
    default_batch = EngagementWorkerSettings.model_fields["worker_batch_size"].default
    p.add_argument("--batch", type=int, default=default_batch, help="records per backfill batch (the worker's most)")
    p.add_argument("--partitions", type=int, default=6)
    p.add_argument("--live", type=int, default=50_000, help="steady-state events after the history")
    p.add_argument("--live-batch", type=int, default=600, help="records per steady-state batch")
    a = p.parse_args()
    result = measure(a.events, a.employees, a.batch, a.partitions, a.live, a.live_batch)
    print(json.dumps(asyncio.run(result), indent=2))


if __name__ == "__main__":
    main()
