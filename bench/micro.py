"""`python -m bench.micro`: where the worker's time goes per event, stage by stage, without Kafka or faust.

Runs the worker's own code (batch planner, slice writes, figures, ScoreChanged encoding, leaderboard writes)
in this process against a private redis-server, and reports CPU microseconds per event (client side and
Redis side separately). Complements the py-spy profile of `python -m bench.run --profile-seconds N`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
import zlib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis

from bench import events
from bench.redis_instance import RedisInstance
from services.engagement.batch import Record, plan
from services.engagement.config import load_scoring
from services.engagement.emitter import score_changed
from services.engagement.gc_policy import collect_rarely
from services.engagement.scoring import DAY_MS, figures
from services.engagement.store import EngagementStore


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


async def measure(
    count: int, employees: int, batch: int, partitions: int, live: int, live_batch: int
) -> dict[str, Any]:
    cfg = load_scoring()
    instance = RedisInstance(Path(tempfile.mkdtemp(prefix="catalyst-micro-")) / "redis")
    client = aioredis.Redis.from_url(instance.url)
    store = EngagementStore(client, cfg, "bench-micro", partitions, 3600)
    offsets = dict.fromkeys(range(partitions), 0)
    records = as_records(events.history(count, employees), partitions, offsets)
    now_ms = int(time.time() * 1000)
    out: dict[str, Any] = {"events": count, "employees": employees, "batch": batch}
    try:
        cpu = time.process_time()
        plans = [plan(records[i : i + batch], now_ms, 3_600_000) for i in range(0, count, batch)]
        out["decode_and_plan_us_per_event"] = (time.process_time() - cpu) / count * 1e6

        cpu, rcpu, wall = time.process_time(), redis_cpu(instance), time.perf_counter()
        for work in plans:
            await store.apply(work.ops, work.activity, work.newest_ms)
        out["apply_client_cpu_us_per_event"] = (time.process_time() - cpu) / count * 1e6
        out["apply_redis_cpu_us_per_event"] = (redis_cpu(instance) - rcpu) / count * 1e6
        out["apply_wall_us_per_event"] = (time.perf_counter() - wall) / count * 1e6

        # steady state: events just before the watermark, in the smaller batches a live stream arrives in
        watermark = max(w.newest_ms for w in plans)
        records = as_records(events.live(live, employees, 12, watermark // 1000 - 7200), partitions, offsets)
        cpu, rcpu, wall = time.process_time(), redis_cpu(instance), time.perf_counter()
        for i in range(0, live, live_batch):
            work = plan(records[i : i + live_batch], now_ms, 3_600_000)
            await store.apply(work.ops, work.activity, work.newest_ms)
        out["live_events"] = live
        out["live_batch"] = live_batch
        out["live_client_cpu_us_per_event"] = (time.process_time() - cpu) / live * 1e6
        out["live_redis_cpu_us_per_event"] = (redis_cpu(instance) - rcpu) / live * 1e6
        out["live_wall_us_per_event"] = (time.perf_counter() - wall) / live * 1e6

        names = [events.employee_id(n) for n in range(employees)]
        cpu = time.process_time()
        states = {}
        for i in range(0, len(names), 500):
            states.update(await store.read_states(names[i : i + 500]))
        read = time.process_time() - cpu
        present = {e: s for e, s in states.items() if s is not None}
        day = watermark // DAY_MS
        cpu = time.process_time()
        computed = {e: figures(s, max(s.as_of_day, day), cfg) for e, s in present.items()}
        compute = time.process_time() - cpu
        cpu = time.process_time()
        for e, f in computed.items():
            s = present[e]
            score_changed(e, s.department, s.opt_out, 1, f.windows, f.signals, watermark).SerializeToString()
        encode = time.process_time() - cpu
        boards = [
            (
                e,
                present[e].department,
                False,
                present[e].as_of_day,
                {w: f.windows[w]["total"] for w in cfg.leaderboards.windows},
            )
            for e, f in computed.items()
        ]
        cpu, rcpu = time.process_time(), redis_cpu(instance)
        for i in range(0, len(boards), 500):
            await store.published(0, [], boards[i : i + 500])
        publish_client = time.process_time() - cpu
        publish_redis = redis_cpu(instance) - rcpu
        n = max(1, len(present))
        out["emit_per_employee_us"] = {
            "read_state": read / n * 1e6,
            "figures": compute / n * 1e6,
            "encode_score_changed": encode / n * 1e6,
            "leaderboards_client": publish_client / n * 1e6,
            "leaderboards_redis": publish_redis / n * 1e6,
        }
        out["employees_with_state"] = len(present)
    finally:
        await client.aclose()
        instance.stop()
    return out


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.micro", description=__doc__.split("\n")[0])
    p.add_argument("--events", type=int, default=100_000)
    p.add_argument("--employees", type=int, default=2_000)
    p.add_argument("--batch", type=int, default=2_000, help="records per batch (the worker's default)")
    p.add_argument("--partitions", type=int, default=6)
    p.add_argument("--live", type=int, default=50_000, help="steady-state events after the history")
    p.add_argument("--live-batch", type=int, default=600, help="records per steady-state batch")
    a = p.parse_args()
    collect_rarely()
    result = measure(a.events, a.employees, a.batch, a.partitions, a.live, a.live_batch)
    print(json.dumps(asyncio.run(result), indent=2))


if __name__ == "__main__":
    main()
