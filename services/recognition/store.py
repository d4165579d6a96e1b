"""Redis adapter: per-employee recognition state, its outbox, and the global indexes queries read.

Key schema (all keys of one employee share the `{emp:<id>}` hash tag, so every script stays in one slot):
  {emp:<id>}:state    hash: rev, version, scored_at, figures (JSON), department, display_name, registered,
                      manager, opt_out, hidden, ranking_opt_out, programme (JSON, services/recognition/programme.py),
                      and one field h:<badge>:<tier> (JSON) per holding
  {emp:<id>}:events   set of recognition event ids ever written (a replayed transition is refused)
  {emp:<id>}:outbox   list of pending records: b"E" + Envelope bytes, or b"T" for a tombstone
  recognition:gone:{<slot tag>}:<pseudonym>
                      string: when the employee was erased (epoch ms), kept for the policy's erasure_markers;
                      keyed by an HMAC of the id in the employee's slot (services/common/pseudonyms.py), so it
                      holds nothing that names them and a commit can check it atomically
Global indexes (derived, rewritten idempotently after each employee change, safe to rebuild):
  recognition:outbox:pending   zset of employee ids with a non-empty outbox
  recognition:outbox:lease     string: the relay instance that may publish (expires unless renewed)
  recognition:holders:<badge>  set of employees holding any tier of the badge
  recognition:at_risk          zset employee id -> earliest revocation due time (epoch seconds)
  recognition:pilot            zset employee id -> pilot score, for pilot candidates
  recognition:programme        set of employees with a part in the programme (answered, volunteered, legitimation)
  recognition:detected         set of employees the ambassador badge was ever granted to (the funnel's first step)
  recognition:departments      set of department ids seen in the directory
  recognition:dept:<id>        set of employee ids registered in that department
  recognition:adoption:weekly  hash: event-time week (its Monday, YYYY-MM-DD) -> adoption with and without
                               ambassadors at the start of that week (JSON of aggregates, names nobody)
"""

from __future__ import annotations

import enum
import json
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import asdict
from datetime import datetime, timedelta

import redis.asyncio as aioredis

from services.common.lease import RedisLease
from services.common.pseudonyms import marker_key
from services.recognition import programme
from services.recognition.model import EmployeeRecord
from services.recognition.rules import EvidenceItem, Holding, Rules, Tier, revocation_due

PENDING = "recognition:outbox:pending"
RELAY_LEASE = "recognition:outbox:lease"
AT_RISK = "recognition:at_risk"
PILOT = "recognition:pilot"
DEPARTMENTS = "recognition:departments"
PROGRAMME = "recognition:programme"
DETECTED = "recognition:detected"
ADOPTION = "recognition:adoption:weekly"
EVENT, TOMBSTONE = b"E", b"T"

_COMMIT = """
if redis.call('EXISTS', KEYS[4]) == 1 then return -2 end
local rev = redis.call('HGET', KEYS[1], 'rev') or '0'
if rev ~= ARGV[1] then return 0 end
for i = 3, #ARGV, 2 do
  if redis.call('SISMEMBER', KEYS[2], ARGV[i]) == 1 then return -1 end
end
for k, v in pairs(cjson.decode(ARGV[2])) do redis.call('HSET', KEYS[1], k, v) end
for i = 3, #ARGV, 2 do
  redis.call('SADD', KEYS[2], ARGV[i])
  redis.call('RPUSH', KEYS[3], ARGV[i + 1])
end
redis.call('HSET', KEYS[1], 'rev', tonumber(rev) + 1)
return 1
"""

# Deletes the employee's keys, queues a tombstone if anything was there, and sets the gone marker to the
# later of its erasure times, all at once: no commit can slip in between.
_FORGET = """
local existed = redis.call('EXISTS', KEYS[1], KEYS[2])
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
if existed > 0 then redis.call('RPUSH', KEYS[3], ARGV[1]) end
local erased = math.max(tonumber(redis.call('GET', KEYS[4]) or '0'), tonumber(ARGV[2]))
redis.call('SET', KEYS[4], erased, 'PX', ARGV[3])
return existed
"""

# Lifts the marker only for a registration that happened after the erasure (a re-hire), never for a replay.
_LIFT = """
local erased = tonumber(redis.call('GET', KEYS[1]) or '-1')
if erased < 0 then return 1 end
if tonumber(ARGV[1]) <= erased then return 0 end
redis.call('DEL', KEYS[1])
return 1
"""

# Removes the published entries from the head of the outbox, only while they are still the head
# (a forget may have replaced the list meanwhile).
_ACK = """
local n = 0
for i = 1, #ARGV do
  if redis.call('LINDEX', KEYS[1], 0) ~= ARGV[i] then break end
  redis.call('LPOP', KEYS[1])
  n = n + 1
end
return n
"""


class Commit(enum.Enum):
    APPLIED = "applied"
    CONFLICT = "conflict"  # someone else wrote first: read again and retry
    DUPLICATE = "duplicate"  # an event id was written before: the transition already happened
    GONE = "gone"  # the employee was erased: nothing about them may be stored again


def state_key(employee_id: str) -> str:
    return f"{{emp:{employee_id}}}:state"


def events_key(employee_id: str) -> str:
    return f"{{emp:{employee_id}}}:events"


def outbox_key(employee_id: str) -> str:
    return f"{{emp:{employee_id}}}:outbox"


def gone_key(pseudonym_key: str, employee_id: str) -> str:
    return marker_key("recognition:gone", pseudonym_key, employee_id)


def holders_key(badge: str) -> str:
    return f"recognition:holders:{badge}"


def department_key(department: str) -> str:
    return f"recognition:dept:{department}"


def holding_field(badge: str, tier: Tier) -> str:
    return f"h:{badge}:{tier.value}"


TIMES = ("granted_at", "at_risk_since", "qualifying_since", "revoked_at")  # a Holding's datetime fields


def _time(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _parse_time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def encode_holding(h: Holding) -> str:
    data = asdict(h)
    data["tier"] = h.tier.value
    for name in TIMES:
        data[name] = _time(getattr(h, name))
    return json.dumps(data, sort_keys=True)


def decode_holding(raw: str | bytes) -> Holding:
    data = json.loads(raw)
    data["tier"] = Tier(data["tier"])
    for name in TIMES:
        data[name] = _parse_time(data.get(name))  # a holding stored before a field existed lacks it
    for name in ("evidence", "revoke_evidence"):
        data[name] = tuple(EvidenceItem(**e) for e in data[name])
    return Holding(**data)


def decode_record(employee_id: str, raw: dict[bytes, bytes]) -> EmployeeRecord:
    text = {k.decode(): v.decode() for k, v in raw.items()}
    holdings = {}
    for name, value in text.items():
        if name.startswith("h:"):
            holding = decode_holding(value)
            holdings[(holding.badge, holding.tier)] = holding
    return EmployeeRecord(
        employee_id=employee_id,
        rev=int(text.get("rev", 0)),
        version=int(text.get("version", 0)),
        scored_at=_parse_time(text.get("scored_at")),
        figures=json.loads(text.get("figures", "{}")),
        department=text.get("department", ""),
        display_name=text.get("display_name", ""),
        registered=text.get("registered") == "1",
        manager=text.get("manager") == "1",
        opt_out=text.get("opt_out") == "1",
        hidden=text.get("hidden") == "1",
        ranking_opt_out=text.get("ranking_opt_out") == "1",
        holdings=holdings,
        programme=programme.decode(text["programme"]) if "programme" in text else programme.Programme(),
    )


def encode_changes(before: EmployeeRecord, after: EmployeeRecord) -> dict[str, str]:
    """The hash fields that differ between two versions of a record."""
    flags = {"registered": after.registered, "manager": after.manager, "opt_out": after.opt_out}
    flags["hidden"] = after.hidden
    flags["ranking_opt_out"] = after.ranking_opt_out
    fields: dict[str, str] = {
        "version": str(after.version),
        "department": after.department,
        "display_name": after.display_name,
        "figures": json.dumps(after.figures, sort_keys=True),
        **{name: "1" if value else "0" for name, value in flags.items()},
    }
    if after.scored_at is not None:
        fields["scored_at"] = after.scored_at.isoformat()
    if after.programme != before.programme:
        fields["programme"] = programme.encode(after.programme)
    for key, holding in after.holdings.items():
        if before.holdings.get(key) != holding:
            fields[holding_field(*key)] = encode_holding(holding)
    return fields


class RecognitionStore:
    def __init__(self, redis: aioredis.Redis, rules: Rules, pseudonym_key: str, marker_ttl: timedelta) -> None:
        self.redis = redis
        self.rules = rules
        self._pseudonym_key = pseudonym_key
        self._marker_ttl_ms = int(marker_ttl.total_seconds() * 1000)
        self._commit = redis.register_script(_COMMIT)
        self._forget = redis.register_script(_FORGET)
        self._lift = redis.register_script(_LIFT)
        self._ack = redis.register_script(_ACK)
        self._relay_lease = RedisLease(redis, RELAY_LEASE)

    async def load(self, employee_id: str) -> EmployeeRecord:
        return decode_record(employee_id, await self.redis.hgetall(state_key(employee_id)))

    async def load_many(self, employee_ids: Sequence[str]) -> list[EmployeeRecord]:
        """The records that exist, in one round trip."""
        raws = await self._hgetall(employee_ids)
        return [decode_record(e, raw) for e, raw in zip(employee_ids, raws, strict=True) if raw]

    async def load_each(self, employee_ids: Sequence[str]) -> dict[str, EmployeeRecord]:
        """Every employee's record as `load` gives it (an unknown one empty), in one round trip."""
        raws = await self._hgetall(employee_ids)
        return {e: decode_record(e, raw) for e, raw in zip(employee_ids, raws, strict=True)}

    async def _hgetall(self, employee_ids: Sequence[str]) -> list[dict[bytes, bytes]]:
        pipe = self.redis.pipeline(transaction=False)
        for employee_id in employee_ids:
            pipe.hgetall(state_key(employee_id))
        return await pipe.execute()

    async def commit(
        self, before: EmployeeRecord, after: EmployeeRecord, events: Iterable[tuple[str, bytes]] = ()
    ) -> Commit:
        """Writes the record and appends its events to the outbox atomically, if nobody wrote in between."""
        employee_id = after.employee_id
        args: list[str | bytes] = [str(before.rev), json.dumps(encode_changes(before, after))]
        events = list(events)
        for event_id, payload in events:
            args.extend([event_id, EVENT + payload])
        keys = [state_key(employee_id), events_key(employee_id), outbox_key(employee_id), self._gone(employee_id)]
        result = int(await self._commit(keys=keys, args=args))
        if result == -2:
            return Commit.GONE
        if result == 0:
            return Commit.CONFLICT
        if result == -1:
            await self.mark_pending(employee_id)  # the first attempt may have died before marking
            return Commit.DUPLICATE
        await self.reindex(before, after)
        if events:
            await self.mark_pending(employee_id)
        return Commit.APPLIED

    async def reindex(self, before: EmployeeRecord, after: EmployeeRecord) -> None:
        """Brings the global indexes in line with one employee's record (idempotent)."""
        employee_id = after.employee_id
        pipe = self.redis.pipeline(transaction=False)
        for badge_id in self.rules.badges:
            if after.top_holding(self.rules, badge_id) is not None:
                pipe.sadd(holders_key(badge_id), employee_id)
            else:
                pipe.srem(holders_key(badge_id), employee_id)
        dues = [d for d in (revocation_due(self.rules, h) for h in after.held()) if d is not None]
        if dues:
            pipe.zadd(AT_RISK, {employee_id: min(dues).timestamp()})
        else:
            pipe.zrem(AT_RISK, employee_id)
        pilot = self.rules.pilot_group
        if after.figures.get("pilot_activities", 0.0) >= max(pilot.min_pilot_activities, 1e-9):
            pipe.zadd(PILOT, {employee_id: after.figures.get(pilot.metric, 0.0)})
        else:
            pipe.zrem(PILOT, employee_id)
        ambassador = self.rules.coverage.badge
        if any(h.grant_seq > 0 for (badge, _), h in after.holdings.items() if badge == ambassador):
            pipe.sadd(DETECTED, employee_id)
        if after.programme.empty:
            pipe.srem(PROGRAMME, employee_id)
        else:
            pipe.sadd(PROGRAMME, employee_id)
        if after.registered and after.department:
            if before.department and before.department != after.department:
                pipe.srem(department_key(before.department), employee_id)
            pipe.sadd(DEPARTMENTS, after.department)
            pipe.sadd(department_key(after.department), employee_id)
        await pipe.execute()

    def _gone(self, employee_id: str) -> str:
        return gone_key(self._pseudonym_key, employee_id)

    async def forget(self, employee_id: str, erased_at: datetime) -> bool:
        """Deletes everything about the employee, marks them gone, and queues a tombstone if anything was there."""
        keys = [state_key(employee_id), events_key(employee_id), outbox_key(employee_id), self._gone(employee_id)]
        erased_ms = int(erased_at.timestamp() * 1000)
        existed = int(await self._forget(keys=keys, args=[TOMBSTONE, erased_ms, self._marker_ttl_ms])) > 0
        pipe = self.redis.pipeline(transaction=False)
        for badge_id in self.rules.badges:
            pipe.srem(holders_key(badge_id), employee_id)
        pipe.zrem(AT_RISK, employee_id)
        pipe.zrem(PILOT, employee_id)
        pipe.srem(PROGRAMME, employee_id)
        pipe.srem(DETECTED, employee_id)
        for department in await self.redis.smembers(DEPARTMENTS):
            pipe.srem(department_key(department.decode()), employee_id)
        await pipe.execute()
        if existed:
            await self.mark_pending(employee_id)
        return existed

    async def lift_marker(self, employee_id: str, registered_at: datetime) -> bool:
        """False when the employee was erased at or after `registered_at` (a replayed registration)."""
        registered_ms = int(registered_at.timestamp() * 1000)
        return bool(await self._lift(keys=[self._gone(employee_id)], args=[registered_ms]))

    async def is_gone(self, employee_id: str) -> bool:
        return bool(await self.redis.exists(self._gone(employee_id)))

    async def records_with_revoked(self, batch: int = 500) -> AsyncIterator[list[EmployeeRecord]]:
        """Every stored record that holds a revoked badge, in batches (a SCAN: retention runs rarely)."""
        ids: list[str] = []
        async for key in self.redis.scan_iter(match="{emp:*}:state", count=batch):
            text = key.decode()
            ids.append(text[len("{emp:") : text.rindex("}")])
            if len(ids) >= batch:
                yield [r for r in await self.load_many(ids) if r.revoked()]
                ids = []
        if ids:
            yield [r for r in await self.load_many(ids) if r.revoked()]

    # ------------------------------------------------------------ outbox

    async def mark_pending(self, employee_id: str) -> None:
        await self.redis.zadd(PENDING, {employee_id: 0})

    async def pending(self, limit: int) -> list[str]:
        return [m.decode() for m in await self.redis.zrange(PENDING, 0, limit - 1)]

    async def outbox(self, employee_id: str) -> list[bytes]:
        return await self.redis.lrange(outbox_key(employee_id), 0, -1)

    async def ack(self, employee_id: str, entries: list[bytes]) -> None:
        """Drops published entries; unmarks the employee unless new entries arrived (checked after ZREM)."""
        await self._ack(keys=[outbox_key(employee_id)], args=entries)
        await self.redis.zrem(PENDING, employee_id)
        if await self.redis.llen(outbox_key(employee_id)):
            await self.mark_pending(employee_id)

    async def hold_relay_lease(self, owner: str, seconds: float) -> bool:
        return await self._relay_lease.hold(owner, seconds)

    async def release_relay_lease(self, owner: str) -> None:
        await self._relay_lease.release(owner)

    async def recover_pending(self) -> int:
        """Marks every non-empty outbox (a writer may have stopped between its commit and its mark)."""
        found = 0
        async for key in self.redis.scan_iter(match="{emp:*}:outbox", count=500):
            text = key.decode()
            await self.mark_pending(text[len("{emp:") : text.index("}")])
            found += 1
        return found

    # ------------------------------------------------------------ indexes for queries

    async def holders(self, badge: str) -> list[str]:
        return sorted(m.decode() for m in await self.redis.smembers(holders_key(badge)))

    async def holder_count(self, badge: str) -> int:
        return int(await self.redis.scard(holders_key(badge)))

    async def due_for_revocation(self, now: datetime, limit: int = 500) -> list[str]:
        members = await self.redis.zrangebyscore(AT_RISK, "-inf", now.timestamp(), start=0, num=limit)
        return [m.decode() for m in members]

    async def pilot_candidates(self) -> list[str]:
        return [m.decode() for m in await self.redis.zrevrange(PILOT, 0, -1)]

    async def detected(self) -> list[str]:
        """Employees the ambassador badge was ever granted to."""
        return sorted(m.decode() for m in await self.redis.smembers(DETECTED))

    async def in_programme(self) -> list[str]:
        """Employees with a part in the programme (volunteers, people who declined, ambassadors legitimated)."""
        return sorted(m.decode() for m in await self.redis.smembers(PROGRAMME))

    async def registered(self) -> list[str]:
        """Every employee registered in a department (the directory as recognition knows it)."""
        pipe = self.redis.pipeline(transaction=False)
        for name in await self.redis.smembers(DEPARTMENTS):
            pipe.smembers(department_key(name.decode()))
        return sorted({m.decode() for members in await pipe.execute() for m in members})

    async def add_adoption_week(self, week: str, snapshot: str, keep: int) -> bool:
        """Stores the week's snapshot unless it or a later week is there (another replica or an earlier run took
        it; a week the clock passed before cannot be seen again from today's figures); keeps the newest `keep`
        weeks. False when nothing was stored."""
        stored = sorted(w.decode() for w in await self.redis.hkeys(ADOPTION))
        if (stored and week <= stored[-1]) or not await self.redis.hsetnx(ADOPTION, week, snapshot):
            return False
        weeks = sorted(w.decode() for w in await self.redis.hkeys(ADOPTION))
        if len(weeks) > keep:
            await self.redis.hdel(ADOPTION, *weeks[: len(weeks) - keep])
        return True

    async def adoption_weeks(self) -> dict[str, str]:
        """Week -> snapshot, oldest first."""
        raw = await self.redis.hgetall(ADOPTION)
        return {k.decode(): v.decode() for k, v in sorted(raw.items())}

    async def departments(self) -> dict[str, int]:
        """Registered department -> number of registered employees."""
        names = sorted(m.decode() for m in await self.redis.smembers(DEPARTMENTS))
        pipe = self.redis.pipeline(transaction=False)
        for name in names:
            pipe.scard(department_key(name))
        counts = await pipe.execute()
        return {name: int(count) for name, count in zip(names, counts, strict=True) if count}
