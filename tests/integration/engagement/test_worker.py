"""The real worker (`python -m services.engagement`) against the real broker and Redis."""

from __future__ import annotations

import time
import urllib.request
from collections import Counter
from pathlib import Path

import redis
import redis.asyncio as aioredis
from catalyst.events.v1 import envelope_pb2

from services.engagement.config import load_scoring
from services.engagement.reference import Reference
from services.engagement.scoring import DAY_MS, figures
from services.engagement.store import EngagementStore, dept_members, dirty_set, leaderboard, state_key, taking_set
from tests.integration.engagement.harness import (
    WorkerProcess,
    committed_all,
    group_members,
    groups,
    produce,
    read_all,
    reset_group,
    wait_until,
)
from tests.unit.engagement.builders import DAY, mixed_history

CFG = load_scoring()
PARTITIONS = 6


def history(seed: int = 7, employees: int = 60, days: int = 120, per_day: int = 100) -> list[envelope_pb2.Envelope]:
    end = (int(time.time()) // DAY) * DAY - 1
    return list(mixed_history(employees=employees, days=days, per_day=per_day, end_seconds=end, seed=seed))


async def stored(redis_url: str, topic: str, employees: list[str], as_of: int) -> dict:
    client = aioredis.Redis.from_url(redis_url)
    try:
        store = EngagementStore(client, CFG, topic, PARTITIONS, 3600)
        states = await store.read_states(employees)
    finally:
        await client.aclose()
    return {e: figures(s, as_of, CFG) for e, s in states.items() if s is not None}


def expected(events: list[envelope_pb2.Envelope], as_of: int) -> dict:
    ref = Reference(CFG)
    ref.feed(events)
    return ref.figures(as_of)


def as_of_day(events: list[envelope_pb2.Envelope]) -> int:
    return max(e.occurred_at.ToMilliseconds() for e in events) // DAY_MS


def drained(redis_url: str) -> bool:
    client = redis.Redis.from_url(redis_url)
    return all(client.zcard(dirty_set(b)) + client.zcard(taking_set(b)) == 0 for b in range(PARTITIONS))


def wait_processed(worker: WorkerProcess, bootstrap: str, topic: str, redis_url: str, timeout: float = 180) -> None:
    def done() -> bool:
        assert worker.alive(), worker.log_tail()
        return committed_all(bootstrap, worker.group, topic) and drained(redis_url)

    wait_until(done, timeout, "the worker to process every record")


def latest_scores(bootstrap: str, topic: str) -> dict[str, envelope_pb2.Envelope | None]:
    latest: dict[str, envelope_pb2.Envelope | None] = {}
    for key, value in read_all(bootstrap, topic):
        employee = key.decode()
        if value is None:
            latest[employee] = None
            continue
        env = envelope_pb2.Envelope.FromString(value)
        current = latest.get(employee)
        if current is None or env.score_changed.version >= current.score_changed.version:
            latest[employee] = env
    return latest


async def test_sigkill_mid_stream_then_restart_gives_the_reference_figures(
    common_env: dict[str, str], kafka_bootstrap: str, topics: dict[str, str], redis_url: str, tmp_path: Path
) -> None:
    events = history()
    half = len(events) // 2
    produce(kafka_bootstrap, topics["interactions"], events[:half])
    worker = WorkerProcess(common_env, tmp_path, CATALYST_WORKER_BATCH_SIZE="200").start()
    client = redis.Redis.from_url(redis_url)
    try:
        wait_until(lambda: client.get("eng:wm") is not None, 120, "the worker to apply a first batch")
        produce(kafka_bootstrap, topics["interactions"], events[half:])
        worker.kill()  # SIGKILL mid-stream: no commit, no cleanup
        worker = WorkerProcess(common_env, tmp_path, group=worker.group).start()
        wait_processed(worker, kafka_bootstrap, topics["interactions"], redis_url)

        health = urllib.request.urlopen(f"http://127.0.0.1:{worker.web_port}/health", timeout=5).read()
        assert b'"ok"' in health
        metrics = urllib.request.urlopen(f"http://127.0.0.1:{worker.metrics_port}/metrics", timeout=5).read()
        assert b"catalyst_engagement_events_total" in metrics
        assert b"catalyst_engagement_event_to_score_seconds_bucket" in metrics
    finally:
        worker.stop()

    as_of = as_of_day(events)
    want = expected(events, as_of)
    employees = sorted(want)
    assert await stored(redis_url, topics["interactions"], employees, as_of) == want

    # the published figures are the stored ones, coalesced (far fewer events than interactions)
    latest = latest_scores(kafka_bootstrap, topics["engagement"])
    assert set(latest) == set(employees)
    published = sum(1 for _ in read_all(kafka_bootstrap, topics["engagement"]))
    assert published < len(events) / 2
    for employee, env in latest.items():
        assert env is not None
        change = env.score_changed
        day = change.version >> 32
        assert day == as_of
        windows = {w: {k: getattr(s, k) for k in want[employee].windows[w]} for w, s in change.windows.items()}
        assert windows == want[employee].windows
        assert dict(change.signals) == want[employee].signals
    top = client.zrevrange(leaderboard("30d"), 0, 0, withscores=True)
    best = max(employees, key=lambda e: want[e].windows["30d"]["total"])
    assert top[0][1] == want[best].windows["30d"]["total"]


async def test_a_consumer_group_reset_re_run_changes_nothing(
    common_env: dict[str, str], kafka_bootstrap: str, topics: dict[str, str], redis_url: str, tmp_path: Path
) -> None:
    events = history(seed=3, employees=40, days=110, per_day=60)
    produce(kafka_bootstrap, topics["interactions"], events)
    worker = WorkerProcess(common_env, tmp_path).start()
    try:
        wait_processed(worker, kafka_bootstrap, topics["interactions"], redis_url)
    finally:
        assert worker.stop() == 0
    assert group_members(kafka_bootstrap, worker.group) == []  # left the group on SIGTERM, no session timeout
    client = redis.Redis.from_url(redis_url)
    as_of = as_of_day(events)
    want = expected(events, as_of)
    before = await stored(redis_url, topics["interactions"], sorted(want), as_of)
    versions = {e: client.hgetall(state_key(e)) for e in want}  # every slice, with its mark
    assert before == want

    reset_group(kafka_bootstrap, worker.group, topics["interactions"], PARTITIONS)  # back to the beginning
    again = WorkerProcess(common_env, tmp_path, group=worker.group).start()
    try:
        wait_processed(again, kafka_bootstrap, topics["interactions"], redis_url)
        metrics = urllib.request.urlopen(f"http://127.0.0.1:{again.metrics_port}/metrics", timeout=5).read().decode()
    finally:
        again.stop()
    assert await stored(redis_url, topics["interactions"], sorted(want), as_of) == want
    assert {e: client.hgetall(state_key(e)) for e in want} == versions  # not a single op re-applied
    registered = {e.employee_id: e.department_id for e in events if e.type.endswith("EmployeeRegistered")}
    sizes = Counter(registered.values())
    assert {d: client.scard(dept_members(d)) for d in sizes} == sizes  # department membership counts
    duplicates = next(line for line in metrics.splitlines() if line.startswith("catalyst_engagement_duplicates_total"))
    assert float(duplicates.split()[-1]) > 0


async def test_a_rebalance_between_two_workers_changes_nothing(
    common_env: dict[str, str], kafka_bootstrap: str, topics: dict[str, str], redis_url: str, tmp_path: Path
) -> None:
    events = history(seed=9, employees=50, days=110, per_day=60)
    topic = topics["interactions"]
    first = WorkerProcess(common_env, tmp_path, CATALYST_WORKER_BATCH_SIZE="200").start()
    second = WorkerProcess(common_env, tmp_path, group=first.group, CATALYST_WORKER_BATCH_SIZE="200").start()
    client = redis.Redis.from_url(redis_url)
    try:
        produce(kafka_bootstrap, topic, events[: len(events) // 2])
        wait_until(lambda: client.get("eng:wm") is not None, 120, "a first batch")
        # only the workers' own consumers are members: faust's consumer never joins any group
        wanted = [f"{first.group}-worker"] * 2
        wait_until(lambda: group_members(kafka_bootstrap, first.group) == wanted, 60, "both workers in the group")
        assert not {g for g in groups(kafka_bootstrap) if g.startswith(first.group) and g != first.group}
        produce(kafka_bootstrap, topic, events[len(events) // 2 :])
        first.kill()  # its partitions move to the second worker after the session timeout
        wait_processed(second, kafka_bootstrap, topic, redis_url)
    finally:
        second.stop()
    as_of = as_of_day(events)
    want = expected(events, as_of)
    assert await stored(redis_url, topic, sorted(want), as_of) == want
    latest = latest_scores(kafka_bootstrap, topics["engagement"])
    assert set(latest) == set(want)
