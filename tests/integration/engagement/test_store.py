"""The Redis store against a real Redis: batched Lua application equals the plain-Python reference, and
replaying any range (including batches cut short by a crash) changes nothing."""

from __future__ import annotations

import random
import time
import zlib

import redis.asyncio as aioredis

from services.engagement.batch import Plan, Record, plan
from services.engagement.config import load_scoring
from services.engagement.reference import Reference
from services.engagement.scoring import figures
from services.engagement.store import (
    EngagementStore,
    gone_key,
    home_bucket,
    leaderboard,
    owner_key,
    slice_field,
    state_key,
    taking_set,
    topic_tag,
)
from tests.unit.engagement.builders import DAY, event, mixed_history, post

CFG = load_scoring()
END = 20_100 * DAY
NOW_MS = END * 1000 + 1
PARTITIONS = 6


def partitioned(events: list) -> dict[int, list[Record]]:
    logs: dict[int, list[Record]] = {p: [] for p in range(PARTITIONS)}
    for env in events:
        p = zlib.crc32(env.employee_id.encode()) % PARTITIONS
        logs[p].append(Record(p, len(logs[p]), env.employee_id.encode(), env.SerializeToString(), NOW_MS))
    return logs


async def consume(
    store: EngagementStore,
    logs: dict[int, list[Record]],
    start: dict[int, int],
    rng: random.Random,
    crash_after: int | None = None,
) -> None:
    """Reads the partitions like a consumer: interleaved chunks, batches of random size."""
    pos = dict(start)
    batches = 0
    while any(pos[p] < len(logs[p]) for p in logs):
        batch: list[Record] = []
        for p in rng.sample(list(logs), len(logs)):
            n = rng.randrange(0, 60)
            batch += logs[p][pos[p] : pos[p] + n]
            pos[p] = min(pos[p] + n, len(logs[p]))
        if not batch:
            continue
        work = plan(batch, NOW_MS, 3_600_000)
        if crash_after is not None and batches == crash_after:
            # a crash in the middle of the pipeline: only some employees' scripts ran
            keep = dict(list(work.ops.items())[: len(work.ops) // 2])
            await store.apply(keep, work.activity, work.newest_ms)
            return
        for employee in work.forget:
            await store.forget(employee, CFG.leaderboards.windows)
        await store.apply(work.ops, work.activity, work.newest_ms)
        batches += 1


async def slice_fields(client: aioredis.Redis, employee: str) -> list[tuple[bytes, int, int] | None]:
    """(topic tag, partition, owner token) of each field of an employee's state hash; None for other fields."""
    return [slice_field(name) for name in await client.hkeys(state_key(employee))]


def active_employees(employees: list[str]) -> list[str]:
    return [e for e in employees if e != "e0003"]


async def stored_figures(store: EngagementStore, employees: list[str], as_of: int) -> dict:
    states = await store.read_states(employees)
    return {e: figures(s, as_of, CFG) for e, s in states.items() if s is not None}


async def test_batched_application_matches_the_reference_and_replays_change_nothing(redis_url: str) -> None:
    events = list(mixed_history(employees=40, days=130, per_day=40, end_seconds=END))
    events.append(event("EmployeeForgotten", "e0003", END - 10))
    ref = Reference(CFG)
    ref.feed(events)
    logs = partitioned(events)
    client = aioredis.Redis.from_url(redis_url)
    store = EngagementStore(client, CFG, "topic-a", PARTITIONS, 3600)
    rng = random.Random(11)
    employees = sorted({e.employee_id for e in events})
    as_of = END // DAY

    await consume(store, logs, {p: 0 for p in logs}, rng, crash_after=25)
    store = EngagementStore(client, CFG, "topic-a", PARTITIONS, 3600)  # restarted: nothing in memory, new tokens
    await consume(store, logs, {p: 0 for p in logs}, rng)
    expected = ref.figures(as_of)
    assert "e0003" not in expected
    assert await stored_figures(store, employees, as_of) == expected

    for restart in (False, True, True):  # replay random ranges, in the same worker or a restarted one
        if restart:
            store = EngagementStore(client, CFG, "topic-a", PARTITIONS, 3600)
        await consume(store, logs, {p: rng.randrange(len(logs[p]) + 1) for p in logs}, rng)
    assert await stored_figures(store, employees, as_of) == expected
    for employee in active_employees(employees):  # one slice per partition: the settling removed the others
        names = await slice_fields(client, employee)
        partitions = [parsed[1] for parsed in names if parsed is not None]
        assert len(partitions) == len(set(partitions)), (employee, names)
    assert not await client.exists(state_key("e0003")) and await client.exists(gone_key("e0003"))

    # memory: the full 100-day state of an active employee stays small
    active = active_employees(employees)
    sizes = [await client.memory_usage(state_key(e)) or 0 for e in active]
    assert sum(sizes) / len(active) < 2048, sizes
    await client.aclose()


async def test_a_backfill_gives_the_same_figures_as_live_processing(redis_url: str) -> None:
    events = list(mixed_history(employees=30, days=150, per_day=40, end_seconds=END, seed=5))
    logs = partitioned(events)
    client = aioredis.Redis.from_url(redis_url)
    employees = sorted({e.employee_id for e in events})
    as_of = END // DAY
    live = EngagementStore(client, CFG, "topic-live", PARTITIONS, 3600)
    rng = random.Random(1)
    # live: small batches as the events arrive
    await consume(live, logs, {p: 0 for p in logs}, rng)
    live_figures = await stored_figures(live, employees, as_of)
    await client.flushdb()
    # backfill: the same history in big batches
    backfill = EngagementStore(client, CFG, "topic-backfill", PARTITIONS, 3600)
    work = plan([r for p in logs for r in logs[p]], NOW_MS, 3_600_000)
    await backfill.apply(work.ops, work.activity, work.newest_ms)
    assert await stored_figures(backfill, employees, as_of) == live_figures
    await client.aclose()


async def test_boards_keep_only_their_top(redis_url: str) -> None:
    cfg = CFG.model_copy(update={"leaderboards": CFG.leaderboards.model_copy(update={"size": 3, "department_size": 2})})
    client = aioredis.Redis.from_url(redis_url)
    store = EngagementStore(client, cfg, "topic-boards", PARTITIONS, 3600)
    rows = [(f"e{i}", "ops", False, 10, dict.fromkeys(cfg.leaderboards.windows, float(i))) for i in range(6)]
    await store.published(0, [], rows)
    await store.published(0, [], [("e0", "ops", False, 10, dict.fromkeys(cfg.leaderboards.windows, 99.0))])
    for window in cfg.leaderboards.windows:
        assert await client.zrevrange(leaderboard(window), 0, -1) == [b"e0", b"e5", b"e4"]
        assert await client.zrevrange(leaderboard(window, "ops"), 0, -1) == [b"e0", b"e5"]
    await client.aclose()


async def test_partitions_added_to_the_topic_widen_the_store_without_losing_state(redis_url: str) -> None:
    # a worker configured for 2 partitions meets records of all 6 (partitions were added to the topic)
    events = list(mixed_history(employees=25, days=40, per_day=30, end_seconds=END, seed=9))
    ref = Reference(CFG)
    ref.feed(events)
    logs = partitioned(events)
    client = aioredis.Redis.from_url(redis_url)
    await client.flushdb()
    store = EngagementStore(client, CFG, "topic-grown", 2, 3600)
    narrow = {p: logs[p] for p in (0, 1)}
    await consume(store, narrow, {p: 0 for p in narrow}, random.Random(3))
    await consume(store, logs, {p: 0 for p in logs}, random.Random(4))  # replays 0-1, then the new ones
    employees = sorted({e.employee_id for e in events})
    as_of = END // DAY
    assert await stored_figures(store, employees, as_of) == ref.figures(as_of)
    await client.aclose()


def posts(*rows: tuple[str, int, int, int]) -> Plan:
    """The plan of a batch of posts, one per (author, partition, offset, event second)."""
    records = [
        Record(partition, offset, e.encode(), post(e, seconds).SerializeToString(), NOW_MS)
        for e, partition, offset, seconds in rows
    ]
    return plan(records, NOW_MS, 3_600_000)


async def test_a_worker_holding_a_forgotten_employee_in_memory_never_writes_them_back(redis_url: str) -> None:
    client = aioredis.Redis.from_url(redis_url)
    holder = EngagementStore(client, CFG, "topic-forgotten", PARTITIONS, 3600)
    other = EngagementStore(client, CFG, "topic-forgotten", PARTITIONS, 3600)

    first = posts(("a", 0, 0, END - 100))
    await holder.apply(first.ops, first.activity, first.newest_ms)  # the holder keeps a's slice in memory
    assert await client.exists(state_key("a"))
    await other.forget("a", CFG.leaderboards.windows)  # another worker handles the erasure
    for partition, offset in ((0, 1), (1, 0)):  # an update of the held slice, and a new slice
        later = posts(("a", partition, offset, END - 50))
        await holder.apply(later.ops, later.activity, later.newest_ms)
        assert not await client.exists(state_key("a")) and await client.exists(gone_key("a"))
    await client.aclose()


async def test_a_batch_settles_each_employee_on_its_own(redis_url: str) -> None:
    """A zombie's write of a slice another writer holds with as many events is undone and a forgotten employee
    stays forgotten, while the others in the same batch are written."""
    client = aioredis.Redis.from_url(redis_url)
    await client.flushdb()
    stale, forgotten, fresh = "s1", "f1", "n1"
    holder = EngagementStore(client, CFG, "topic-settle", PARTITIONS, 3600)
    other = EngagementStore(client, CFG, "topic-settle", PARTITIONS, 3600)

    first = posts((stale, 0, 0, END - 300), (forgotten, 0, 1, END - 300))
    await holder.apply(first.ops, first.activity, first.newest_ms)  # the holder keeps both in memory
    moved_on = posts((stale, 0, 2, END - 200))
    await other.apply(moved_on.ops, moved_on.activity, moved_on.newest_ms)  # another writer moves stale's slice on
    await other.forget(forgotten, CFG.leaderboards.windows)
    before = await client.hgetall(state_key(stale))

    later = posts((stale, 0, 2, END - 200), (forgotten, 0, 3, END - 100), (fresh, 0, 4, END - 100))
    assert (await holder.apply(later.ops, later.activity, later.newest_ms)).superseded == 2
    assert await client.hgetall(state_key(stale)) == before  # the zombie's plain HSET was repaired
    assert not await client.exists(state_key(forgotten)) and await client.exists(gone_key(forgotten))
    assert await client.exists(state_key(fresh))
    states = await holder.read_states([stale, fresh])
    assert states[stale] is not None and states[stale].changes == 2
    assert states[fresh] is not None and states[fresh].changes == 1
    await client.aclose()


async def test_each_writer_has_its_own_field_and_the_one_with_most_events_stays(redis_url: str) -> None:
    """Two writers of one partition (a zombie and its successor) each write their own field; of a partition's
    fields the one with the highest mark stays (a field of the layout before tokens too), whatever the order of
    their tokens, so readers never step back."""
    client = aioredis.Redis.from_url(redis_url)
    await client.flushdb()
    topic = "topic-owners"
    tag = topic_tag(topic).encode()
    zombie = EngagementStore(client, CFG, topic, PARTITIONS, 3600)
    successor = EngagementStore(client, CFG, topic, PARTITIONS, 3600)

    async def fields() -> list[tuple[int, int]]:
        out = []
        for parsed in await slice_fields(client, "z"):
            assert parsed is not None and parsed[0] == tag, parsed
            out.append((parsed[1], parsed[2]))
        return out

    first = posts(("z", 0, 0, END - 300))
    await zombie.apply(first.ops, first.activity, first.newest_ms)
    assert list(await fields()) == [(0, 1)]  # partition 0, token 1
    scratch = EngagementStore(client, CFG, topic, PARTITIONS, 3600)
    legacy = posts(("x", 1, 0, END - 150))  # z's partition-1 slice up to offset 0, in the layout before tokens
    await scratch.apply(legacy.ops, legacy.activity, legacy.newest_ms)
    [blob] = (await client.hgetall(state_key("x"))).values()
    await client.delete(state_key("x"))
    await client.hset(state_key("z"), f"{tag.decode()}:1", blob)

    ahead = posts(("z", 0, 0, END - 300), ("z", 0, 1, END - 200))
    await successor.apply(ahead.ops, ahead.activity, ahead.newest_ms)  # replays 0, adds 1
    assert sorted(await fields()) == [(0, 2), (1, 0)]
    on = posts(("z", 1, 0, END - 150), ("z", 1, 1, END - 100))
    await successor.apply(on.ops, on.activity, on.newest_ms)  # offset 0 was in the old field, which goes
    assert sorted(await fields()) == [(0, 2), (1, 2)]  # tokens count per partition

    late = posts(("z", 0, 1, END - 200), ("z", 0, 2, END - 50))
    ahead = await zombie.apply(late.ops, late.activity, late.newest_ms)  # the zombie gets ahead: its field stays
    assert ahead.superseded == 0
    assert sorted(await fields()) == [(0, 1), (1, 2)]
    state = (await successor.read_states(["z"]))["z"]
    assert state is not None and state.changes == 5  # partition 0 up to offset 2, partition 1 up to 1

    on = posts(("z", 0, 2, END - 50), ("z", 0, 3, END - 10))
    assert (await successor.apply(on.ops, on.activity, on.newest_ms)).superseded == 0  # now the successor leads
    assert sorted(await fields()) == [(0, 2), (1, 2)]
    state = (await zombie.read_states(["z"]))["z"]
    assert state is not None and state.changes == 6
    await client.aclose()


async def test_a_writer_whose_token_is_newer_but_whose_slice_is_older_does_not_fence_the_owner(
    redis_url: str,
) -> None:
    """Token order is claim order, not ownership order: a zombie that claims its token after the new owner
    (it was stuck in its batch) must not win with older state."""
    client = aioredis.Redis.from_url(redis_url)
    await client.flushdb()
    owner, zombie = (EngagementStore(client, CFG, "topic-late-claim", PARTITIONS, 3600) for _ in range(2))
    claim = posts(("x", 0, 0, END - 400))
    await owner.apply(claim.ops, claim.activity, claim.newest_ms)  # the owner's token for partition 0: 1
    held = posts(("w", 0, 0, END - 300))
    await zombie.apply(held.ops, held.activity, held.newest_ms)  # token 2; the zombie keeps w at offset 0
    current = posts(("w", 0, 0, END - 300), ("w", 0, 1, END - 200), ("w", 0, 2, END - 150))
    await owner.apply(current.ops, current.activity, current.newest_ms)
    stale = posts(("w", 0, 1, END - 200))
    assert (await zombie.apply(stale.ops, stale.activity, stale.newest_ms)).superseded == 1  # mark 1 < 2: undone
    more = posts(("w", 0, 3, END - 100))
    assert (await owner.apply(more.ops, more.activity, more.newest_ms)).superseded == 0
    state = (await owner.read_states(["w"]))["w"]
    assert state is not None and state.changes == 4
    await client.aclose()


async def test_a_forgotten_employees_leftover_is_deleted_by_the_next_write_or_erasure(redis_url: str) -> None:
    """A write back that was never settled (the worker failed between its HSET and the settling) is not read as
    the employee's state, and goes at the next write or the next erasure."""
    client = aioredis.Redis.from_url(redis_url)
    await client.flushdb()
    topic = "topic-leftover"
    writer = EngagementStore(client, CFG, topic, PARTITIONS, 3600)
    for employee in ("g", "h"):
        first = posts((employee, 0, 0, END - 300))
        await writer.apply(first.ops, first.activity, first.newest_ms)
    leftovers = {e: await client.hgetall(state_key(e)) for e in ("g", "h")}
    for employee in ("g", "h"):
        await writer.forget(employee, CFG.leaderboards.windows)
        await client.hset(state_key(employee), mapping=leftovers[employee])  # written back, never settled
    assert (await writer.read_states(["g"]))["g"] is None
    later = posts(("g", 0, 1, END - 100))
    assert (await writer.apply(later.ops, later.activity, later.newest_ms)).superseded == 1
    assert not await client.exists(state_key("g"))
    await writer.forget("h", CFG.leaderboards.windows)  # erasing again deletes it too
    assert not await client.exists(state_key("h"))
    await client.aclose()


def later_on() -> float:
    """A round's cutoff after every mark a test made."""
    return time.time() + 3600


async def one_marked(redis_url: str, topic: str, employee: str) -> tuple[aioredis.Redis, EngagementStore, int]:
    """A fresh database where one post of `employee` was applied: (client, store, the employee's bucket)."""
    client = aioredis.Redis.from_url(redis_url)
    await client.flushdb()
    store = EngagementStore(client, CFG, topic, PARTITIONS, 3600)
    first = posts((employee, 0, 0, END - 300))
    await store.apply(first.ops, first.activity, first.newest_ms)
    return client, store, home_bucket(employee, PARTITIONS)


async def test_a_change_marked_while_its_figures_are_published_is_published_again(redis_url: str) -> None:
    client, store, bucket = await one_marked(redis_url, "topic-dirty", "d1")
    chunk = await store.dirty(bucket, 10, later_on())
    assert [e for e, _ in chunk] == ["d1"]
    assert await store.dirty(bucket, 10, later_on()) == chunk  # not published yet: a retry or a restart takes it again

    later = posts(("d1", 0, 1, END - 100))
    await store.apply(later.ops, later.activity, later.newest_ms)  # d1 changes while the chunk is published
    await store.published(bucket, chunk, [])
    assert not await client.exists(taking_set(bucket))
    again = await store.dirty(bucket, 10, later_on())
    assert [e for e, _ in again] == ["d1"]  # the newer change is still due
    await store.published(bucket, again, [])
    assert await store.dirty(bucket, 10, later_on()) == []
    await client.aclose()


async def test_a_batch_of_a_revoked_partition_is_left_to_its_new_owner(redis_url: str) -> None:
    """A batch fetched before a revocation and applied after it writes nothing of that partition and claims no
    token for it, so the new owner is not fenced out of its own partition."""
    client = aioredis.Redis.from_url(redis_url)
    await client.flushdb()
    topic = "topic-handover"
    old = EngagementStore(client, CFG, topic, PARTITIONS, 3600)
    new = EngagementStore(client, CFG, topic, PARTITIONS, 3600)
    old.assign([0, 1])
    first = posts(("h", 0, 0, END - 300))
    await old.apply(first.ops, first.activity, first.newest_ms)

    old.release([0])
    new.assign([0])
    taken_over = posts(("h", 0, 0, END - 300), ("h", 0, 1, END - 200))
    await new.apply(taken_over.ops, taken_over.activity, taken_over.newest_ms)
    stale = posts(("h", 0, 1, END - 200), ("h", 0, 2, END - 100), ("k", 1, 0, END - 100))
    await old.apply(stale.ops, stale.activity, stale.newest_ms)  # fetched before the revocation
    assert await client.get(owner_key(topic_tag(topic), 0)) == b"2"  # the old owner claimed nothing more
    assert await client.exists(state_key("k"))  # its partition 1 is still its own

    later = posts(("h", 0, 2, END - 100))
    assert (await new.apply(later.ops, later.activity, later.newest_ms)).superseded == 0
    assert await slice_fields(client, "h") == [(topic_tag(topic).encode(), 0, 2)]
    state = (await new.read_states(["h"]))["h"]
    assert state is not None and state.changes == 3
    await client.aclose()


async def test_a_round_takes_only_marks_made_before_it_began(redis_url: str) -> None:
    """Marks made while a round publishes wait for the next round: at most one figure per employee and round."""
    client, store, bucket = await one_marked(redis_url, "topic-cutoff", "c1")
    began = time.time()
    assert await store.dirty(bucket, 10, began - 60) == []  # marked after that
    assert [e for e, _ in await store.dirty(bucket, 10, began)] == ["c1"]
    await client.aclose()


async def test_a_stale_emitter_does_not_clear_a_newer_mark_another_took(redis_url: str) -> None:
    """At a rebalance two emitters may work on one bucket for a moment."""
    client, store, bucket = await one_marked(redis_url, "topic-emitters", "m1")
    other = EngagementStore(client, CFG, "topic-emitters", PARTITIONS, 3600)
    taken = await store.dirty(bucket, 10, later_on())
    assert await other.dirty(bucket, 10, later_on()) == taken  # the other emitter sees the same held chunk
    await store.published(bucket, taken, [])
    later = posts(("m1", 0, 1, END - 100))
    await store.apply(later.ops, later.activity, later.newest_ms)
    newer = await store.dirty(bucket, 10, later_on())
    assert [e for e, _ in newer] == ["m1"] and newer != taken
    await other.published(bucket, taken, [])  # the stale emitter finishes its old chunk
    assert await store.dirty(bucket, 10, later_on()) == newer  # the newer mark is still there to publish
    await client.aclose()
