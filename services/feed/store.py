"""Redis state of the feed and its outbox, written together atomically.

An API write runs as an optimistic transaction: the handler reads what it needs (every key it reads is
WATCHed), decides with the pure domain rules, and queues its writes plus the outbox entries; EXEC
applies them all or none. If a watched key changed meanwhile, the whole handler runs again. So a
state change and its event cannot diverge.

Ingestion batches use Lua scripts instead (ingest_store.py), so that concurrent batches of one source
do not all WATCH the same "already ingested" set. Key schema: docs/feed.md.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import redis.asyncio as aioredis
from catalyst.events.v1 import envelope_pb2
from redis.exceptions import WatchError

from services.common.errors import Unavailable
from services.feed.domain import Comment, Employee, Post, Profile
from services.feed.events import outbox_partition

T = TypeVar("T")


class Keys:
    """Every Redis key the feed uses. Per-employee keys share the hash tag {emp:<id>}."""

    DEPARTMENTS = "feed:departments"
    FEED_ALL = "feed:index:all"
    RELAY_LEASE = "feed:outbox:lease"
    OUTBOX_PREFIX = "feed:outbox:"

    @staticmethod
    def employee(emp: str) -> str:
        return f"{{emp:{emp}}}:employee"

    @staticmethod
    def employee_key_parts() -> tuple[str, str]:
        """What goes before and after the id in `employee()`, for scripts that build the key."""
        prefix, _, suffix = Keys.employee("\0").partition("\0")
        return prefix, suffix

    @staticmethod
    def profile(emp: str) -> str:
        return f"{{emp:{emp}}}:profile"

    @staticmethod
    def posts_of(emp: str) -> str:
        return f"{{emp:{emp}}}:posts"

    @staticmethod
    def comments_of(emp: str) -> str:
        return f"{{emp:{emp}}}:comments"

    @staticmethod
    def reactions_of(emp: str) -> str:
        return f"{{emp:{emp}}}:reactions"

    @staticmethod
    def feedback_of(emp: str) -> str:
        return f"{{emp:{emp}}}:feedback"

    @staticmethod
    def surveys_of(emp: str) -> str:
        return f"{{emp:{emp}}}:surveys"

    @staticmethod
    def sessions_of(emp: str) -> str:
        return f"{{emp:{emp}}}:sessions"

    @staticmethod
    def post(post_id: str) -> str:
        return f"feed:post:{post_id}"

    @staticmethod
    def post_reactions(post_id: str) -> str:
        return f"feed:post:{post_id}:reactions"

    @staticmethod
    def post_reactors(post_id: str) -> str:
        return f"feed:post:{post_id}:reactors"

    @staticmethod
    def post_comments(post_id: str) -> str:
        return f"feed:post:{post_id}:comments"

    @staticmethod
    def comment(comment_id: str) -> str:
        return f"feed:comment:{comment_id}"

    @staticmethod
    def feed_department(dept: str) -> str:
        return f"feed:index:dept:{dept}"

    @staticmethod
    def ingested(source: str) -> str:
        return f"feed:ingested:{source}"

    @staticmethod
    def outbox(partition: int) -> str:
        return f"{Keys.OUTBOX_PREFIX}{partition}"


def _s(value: bytes | None) -> str:
    return value.decode() if value else ""


def _employee(emp_id: str, raw: dict[bytes, bytes]) -> Employee | None:
    if not raw:
        return None
    return Employee(
        employee_id=emp_id,
        display_name=_s(raw.get(b"display_name")),
        department_id=_s(raw.get(b"department_id")),
        is_manager=raw.get(b"is_manager") == b"1",
    )


def _post(raw: dict[bytes, bytes], reactions: dict[bytes, bytes]) -> Post | None:
    if not raw:
        return None
    return Post(
        post_id=_s(raw[b"post_id"]),
        author_id=_s(raw[b"author_id"]),
        author_department_id=_s(raw.get(b"author_department_id")),
        kind=int(raw[b"kind"]),
        title=_s(raw.get(b"title")),
        body=_s(raw.get(b"body")),
        tags=tuple(json.loads(raw.get(b"tags", b"[]"))),
        target_department_id=_s(raw.get(b"target_department_id")),
        created_ms=int(raw[b"created_ms"]),
        edited_ms=int(raw.get(b"edited_ms", 0)),
        comment_count=int(raw.get(b"comment_count", 0)),
        accepted_answer_id=_s(raw.get(b"accepted_answer_id")),
        reactions={k.decode(): int(v) for k, v in reactions.items() if int(v) > 0},
    )


def _post_fields(post: Post) -> dict[str, str | int]:
    return {
        "post_id": post.post_id,
        "author_id": post.author_id,
        "author_department_id": post.author_department_id,
        "kind": post.kind,
        "title": post.title,
        "body": post.body,
        "tags": json.dumps(list(post.tags)),
        "target_department_id": post.target_department_id,
        "created_ms": post.created_ms,
        "edited_ms": post.edited_ms,
        "comment_count": post.comment_count,
        "accepted_answer_id": post.accepted_answer_id,
    }


def _comment(raw: dict[bytes, bytes]) -> Comment | None:
    if not raw:
        return None
    return Comment(
        comment_id=_s(raw[b"comment_id"]),
        post_id=_s(raw[b"post_id"]),
        author_id=_s(raw[b"author_id"]),
        body=_s(raw.get(b"body")),
        is_answer=raw.get(b"is_answer") == b"1",
        created_ms=int(raw[b"created_ms"]),
        accepted=raw.get(b"accepted") == b"1",
    )


def _profile(raw: dict[bytes, bytes]) -> Profile:
    if not raw:
        return Profile()
    return Profile(
        job_title=_s(raw.get(b"job_title")),
        location=_s(raw.get(b"location")),
        about=_s(raw.get(b"about")),
        skills=tuple(json.loads(raw.get(b"skills", b"[]"))),
        photo_url=_s(raw.get(b"photo_url")),
        phone=_s(raw.get(b"phone")),
        updated_ms=int(raw.get(b"updated_ms", 0)),
    )


@dataclass
class Tx:
    """One optimistic transaction: WATCHing reads now, queued writes and outbox entries at commit."""

    pipe: Any
    partitions: int
    _ops: list[tuple[str, tuple, dict]] = field(default_factory=list)
    events: list[envelope_pb2.Envelope] = field(default_factory=list)

    async def _watch(self, *keys: str) -> None:
        await self.pipe.watch(*keys)

    # ---- reads (each WATCHes what it reads)

    async def employee(self, emp_id: str) -> Employee | None:
        key = Keys.employee(emp_id)
        await self._watch(key)
        return _employee(emp_id, await self.pipe.hgetall(key))

    async def department_exists(self, dept: str) -> bool:
        await self._watch(Keys.DEPARTMENTS)
        return bool(await self.pipe.sismember(Keys.DEPARTMENTS, dept))

    async def post(self, post_id: str) -> Post | None:
        await self._watch(Keys.post(post_id), Keys.post_reactions(post_id))
        return _post(await self.pipe.hgetall(Keys.post(post_id)), await self.pipe.hgetall(Keys.post_reactions(post_id)))

    async def comment(self, comment_id: str) -> Comment | None:
        await self._watch(Keys.comment(comment_id))
        return _comment(await self.pipe.hgetall(Keys.comment(comment_id)))

    async def profile(self, emp_id: str) -> Profile:
        await self._watch(Keys.profile(emp_id))
        return _profile(await self.pipe.hgetall(Keys.profile(emp_id)))

    async def is_member(self, key: str, member: str) -> bool:
        await self._watch(key)
        return bool(await self.pipe.sismember(key, member))

    async def members(self, key: str) -> list[str]:
        await self._watch(key)
        return sorted(m.decode() for m in await self.pipe.smembers(key))

    async def comment_ids(self, post_id: str) -> list[str]:
        key = Keys.post_comments(post_id)
        await self._watch(key)
        return [m.decode() for m in await self.pipe.zrange(key, 0, -1)]

    # ---- writes (queued; applied atomically with the outbox entries)

    def queue(self, method: str, *args: Any, **kwargs: Any) -> None:
        self._ops.append((method, args, kwargs))

    def save_employee(self, emp: Employee) -> None:
        self.queue(
            "hset",
            Keys.employee(emp.employee_id),
            mapping={
                "display_name": emp.display_name,
                "department_id": emp.department_id,
                "is_manager": "1" if emp.is_manager else "0",
            },
        )
        self.queue("sadd", Keys.DEPARTMENTS, emp.department_id)

    def save_post(self, post: Post) -> None:
        self.queue("hset", Keys.post(post.post_id), mapping=_post_fields(post))

    def index_post(self, post: Post) -> None:
        """The company feed holds every post; a department feed holds posts addressed to the
        department and posts its members wrote."""
        self.queue("sadd", Keys.posts_of(post.author_id), post.post_id)
        self.queue("zadd", Keys.FEED_ALL, {post.post_id: 0})
        for dept in {post.author_department_id, post.target_department_id} - {""}:
            self.queue("zadd", Keys.feed_department(dept), {post.post_id: 0})

    def save_comment(self, comment: Comment) -> None:
        self.queue(
            "hset",
            Keys.comment(comment.comment_id),
            mapping={
                "comment_id": comment.comment_id,
                "post_id": comment.post_id,
                "author_id": comment.author_id,
                "body": comment.body,
                "is_answer": "1" if comment.is_answer else "0",
                "accepted": "1" if comment.accepted else "0",
                "created_ms": comment.created_ms,
            },
        )
        self.queue("zadd", Keys.post_comments(comment.post_id), {comment.comment_id: 0})
        self.queue("sadd", Keys.comments_of(comment.author_id), comment.comment_id)

    def save_profile(self, emp_id: str, profile: Profile) -> None:
        self.queue(
            "hset",
            Keys.profile(emp_id),
            mapping={
                "job_title": profile.job_title,
                "location": profile.location,
                "about": profile.about,
                "skills": json.dumps(list(profile.skills)),
                "photo_url": profile.photo_url,
                "phone": profile.phone,
                "updated_ms": profile.updated_ms,
            },
        )

    def emit(self, env: envelope_pb2.Envelope) -> None:
        self.events.append(env)

    def apply(self) -> None:
        for method, args, kwargs in self._ops:
            getattr(self.pipe, method)(*args, **kwargs)
        for env in self.events:
            stream = Keys.outbox(outbox_partition(env.employee_id, self.partitions))
            self.pipe.xadd(
                stream, {"key": env.employee_id, "id": env.event_id, "type": env.type, "value": env.SerializeToString()}
            )

    @property
    def has_writes(self) -> bool:
        return bool(self._ops or self.events)


class FeedStore:
    """Reads for queries, and `run()` for writes (optimistic transaction, retried on conflict)."""

    def __init__(self, redis: aioredis.Redis, partitions: int, max_retries: int = 50) -> None:
        self.redis = redis
        self.partitions = partitions
        self._max_retries = max_retries

    async def run(self, handler: Callable[[Tx], Awaitable[T]]) -> T:
        """Runs `handler` (reads, rules, queued writes) and commits its writes with its events atomically."""
        for _ in range(self._max_retries):
            async with self.redis.pipeline(transaction=True) as pipe:
                tx = Tx(pipe, self.partitions)
                result = await handler(tx)
                if not tx.has_writes:
                    await pipe.reset()
                    return result
                pipe.multi()
                tx.apply()
                try:
                    await pipe.execute()
                except WatchError:
                    continue
                return result
        raise Unavailable("the feed is very busy right now; please retry in a moment")

    # ---- queries (no transaction needed)

    async def employee(self, emp_id: str) -> Employee | None:
        return _employee(emp_id, await self.redis.hgetall(Keys.employee(emp_id)))

    async def profile(self, emp_id: str) -> Profile:
        return _profile(await self.redis.hgetall(Keys.profile(emp_id)))

    async def post(self, post_id: str) -> Post | None:
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.hgetall(Keys.post(post_id))
            pipe.hgetall(Keys.post_reactions(post_id))
            raw, reactions = await pipe.execute()
        return _post(raw, reactions)

    async def comments(self, post_id: str, limit: int) -> list[Comment]:
        ids = await self.redis.zrange(Keys.post_comments(post_id), 0, limit - 1)
        if not ids:
            return []
        async with self.redis.pipeline(transaction=False) as pipe:
            for cid in ids:
                pipe.hgetall(Keys.comment(cid.decode()))
            raws = await pipe.execute()
        return [c for c in (_comment(r) for r in raws) if c is not None]

    async def members(self, key: str) -> list[str]:
        return sorted(m.decode() for m in await self.redis.smembers(key))

    async def posts(self, post_ids: Sequence[str]) -> list[Post]:
        async with self.redis.pipeline(transaction=False) as pipe:
            for pid in post_ids:
                pipe.hgetall(Keys.post(pid))
                pipe.hgetall(Keys.post_reactions(pid))
            raws = await pipe.execute()
        return [p for p in (_post(raws[i], raws[i + 1]) for i in range(0, len(raws), 2)) if p is not None]

    async def comments_by_id(self, comment_ids: Sequence[str]) -> list[Comment]:
        async with self.redis.pipeline(transaction=False) as pipe:
            for cid in comment_ids:
                pipe.hgetall(Keys.comment(cid))
            raws = await pipe.execute()
        return [c for c in (_comment(r) for r in raws) if c is not None]

    async def feedback(self, emp_id: str) -> dict[str, dict[str, Any]]:
        """Feedback id -> its stored record (kind, topic, body, created_ms)."""
        raw = await self.redis.hgetall(Keys.feedback_of(emp_id))
        return {k.decode(): json.loads(v) for k, v in sorted(raw.items())}

    async def posts_created_before(self, cutoff_id: str, limit: int) -> list[str]:
        """Ids of posts older than `cutoff_id` (ids sort by creation time), oldest first."""
        ids = await self.redis.zrange(Keys.FEED_ALL, "-", f"({cutoff_id}", bylex=True, offset=0, num=limit)
        return [i.decode() for i in ids]

    async def feedback_keys(self) -> AsyncIterator[tuple[str, list[str]]]:
        """Every employee's feedback hash as (key, feedback ids): retention reads them rarely, so a SCAN."""
        async for key in self.redis.scan_iter(match=Keys.feedback_of("*"), count=500):
            yield key.decode(), [f.decode() for f in await self.redis.hkeys(key)]

    async def delete_fields(self, key: str, fields: Sequence[str]) -> int:
        return int(await self.redis.hdel(key, *fields)) if fields else 0

    async def feed_page(self, department_id: str, after: str, size: int) -> tuple[list[Post], str]:
        """Newest first. Post ids sort by creation time, so the index is a lexicographic sorted set."""
        key = Keys.feed_department(department_id) if department_id else Keys.FEED_ALL
        start = f"({after}" if after else "+"
        ids = [
            i.decode() for i in await self.redis.zrange(key, start, "-", desc=True, bylex=True, offset=0, num=size + 1)
        ]
        more = len(ids) > size
        ids = ids[:size]
        posts = await self.posts(ids)
        return posts, (ids[-1] if more and ids else "")
