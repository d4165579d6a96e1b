"""Thousands of Redis commands in one write, their replies parsed by hiredis: the stream processors' hot path.

redis-py's asyncio pipeline packs arguments in Python and wraps every reply in a timeout context; hiredis packs
and parses in C, about an order of magnitude cheaper per command. A
worker batch carries one command per touched employee, so that difference is most of the per-event budget
(docs/benchmark.md). Everything else keeps using redis-py (services/common/redis_client.py).
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Sequence
from typing import Any, NamedTuple

import hiredis
import redis.asyncio as aioredis
from redis.connection import parse_url
from redis.exceptions import BusyLoadingError, ClusterDownError, NoScriptError, ResponseError, TryAgainError
from redis.exceptions import ConnectionError as RedisConnectionError

Arg = bytes | str | int | float
Command = Sequence[Arg]
READ_CHUNK = 1 << 16
INCOMPLETE = object()  # what the reader returns until a whole reply is buffered (not False: a reply can be 0)
# Error replies that callers handle by kind, as redis-py's own client types them: a Redis still loading its data
# or a cluster moving slots is transient (retried), a missing script is loaded again.
TYPED_ERRORS: dict[str, type[ResponseError]] = {
    "LOADING": BusyLoadingError,
    "NOSCRIPT": NoScriptError,
    "TRYAGAIN": TryAgainError,
    "CLUSTERDOWN": ClusterDownError,
}


class Packed(NamedTuple):
    """Commands in the wire format, ready to send: `count` replies will come back."""

    payload: bytes
    count: int


def pack(commands: Sequence[Command]) -> bytes:
    """The wire format of the commands (hiredis packs in C)."""
    pack_command = hiredis.pack_command
    return b"".join(pack_command(tuple(c)) for c in commands)


def _typed(reply: Any) -> Any:
    if isinstance(reply, ResponseError):
        kind = TYPED_ERRORS.get(str(reply).split(" ", 1)[0])
        if kind is not None:
            return kind(str(reply))
    return reply


class RedisBatch:
    """One connection; `execute` sends a whole batch and returns one reply per command, in order.

    Error replies come back as ResponseError objects in the list (like redis-py's raise_on_error=False). An
    I/O fault, timeout or cancellation drops the connection (a half-read reply stream cannot be resumed) and
    raises redis' ConnectionError, so callers retry the batch the same way as with redis-py; the commands
    sent here must therefore be safe to repeat.
    """

    def __init__(self, options: dict[str, Any], tls: bool = False, timeout: float = 30.0) -> None:
        if "path" in options:
            raise ValueError("unix socket connections are not supported by the batch connection")
        self.host: str = options.get("host", "localhost")
        self.port = int(options.get("port", 6379))
        self.db = int(options.get("db", 0))
        self.username: str | None = options.get("username")
        self.password: str | None = options.get("password")
        self.tls = tls
        self.timeout = timeout
        self._streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        self._reader = hiredis.Reader(replyError=ResponseError, notEnoughData=INCOMPLETE)
        self._lock = asyncio.Lock()

    @classmethod
    def from_url(cls, url: str) -> RedisBatch:
        return cls(parse_url(url), tls=url.startswith("rediss://"))

    @classmethod
    def like(cls, client: aioredis.Redis) -> RedisBatch:
        """A batch connection to the same server, database and credentials as a redis-py client."""
        pool = client.connection_pool
        return cls(dict(pool.connection_kwargs), tls=issubclass(pool.connection_class, aioredis.SSLConnection))

    async def _connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        context = ssl.create_default_context() if self.tls else None
        streams = await asyncio.open_connection(self.host, self.port, ssl=context)
        self._streams = streams
        self._reader = hiredis.Reader(replyError=ResponseError, notEnoughData=INCOMPLETE)
        hello: list[Sequence[Arg]] = []
        if self.password is not None:
            hello.append(("AUTH", self.username, self.password) if self.username else ("AUTH", self.password))
        if self.db:
            hello.append(("SELECT", self.db))
        for reply in await self._exchange(hello):
            if isinstance(reply, ResponseError):
                raise RedisConnectionError(f"redis refused the connection set-up: {reply}")
        return streams

    def _send(self, payload: bytes) -> None:
        assert self._streams is not None
        self._streams[1].write(payload)

    async def _receive(self, want: int) -> list[Any]:
        assert self._streams is not None
        reader, writer = self._streams
        await writer.drain()
        parser = self._reader
        replies: list[Any] = []
        while True:
            replies += iter(parser.gets, INCOMPLETE)  # every whole reply buffered, without a Python loop
            if len(replies) >= want:
                return [_typed(r) for r in replies] if any(isinstance(r, ResponseError) for r in replies) else replies
            data = await reader.read(READ_CHUNK)
            if not data:
                raise RedisConnectionError("connection closed by redis")
            parser.feed(data)

    async def _exchange(self, commands: Sequence[Command]) -> list[Any]:
        self._send(pack(commands))
        return await self._receive(len(commands))

    async def execute(self, commands: Sequence[Command]) -> list[Any]:
        """Sends every command in one write and returns their replies in order (errors as values)."""
        return await self.execute_packed(Packed(pack(commands), len(commands)))

    async def execute_packed(self, packed: Packed) -> list[Any]:
        """`execute` for commands packed beforehand (`pack`), e.g. while the batch before is still in Redis."""
        if not packed.count:
            return []
        async with self._lock:
            try:
                async with asyncio.timeout(self.timeout):
                    if self._streams is None:
                        await self._connect()
                    self._send(packed.payload)
                    return await self._receive(packed.count)
            except BaseException as exc:
                self._drop()
                if isinstance(exc, (OSError, TimeoutError, asyncio.IncompleteReadError)):
                    raise RedisConnectionError(f"redis batch failed: {exc!r}") from exc
                raise

    def _drop(self) -> None:
        if self._streams is not None:
            self._streams[1].close()
            self._streams = None

    async def close(self) -> None:
        if self._streams is not None:
            writer = self._streams[1]
            self._streams = None
            writer.close()
            try:
                await writer.wait_closed()
            except OSError:
                pass
