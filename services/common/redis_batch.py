"""Thousands of Redis commands in one write, their replies parsed by hiredis: the stream processors' hot path.

redis-py's asyncio pipeline spends 15-30 µs of Python per command on this machine (arguments packed in
Python, a timeout context around every reply); hiredis packs and parses in C, about 2 µs per command. A
worker batch carries one command per touched employee, so that difference is most of the per-event budget
(docs/benchmark.md). Everything else keeps using redis-py (services/common/redis_client.py).
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import hiredis
import redis.asyncio as aioredis
from redis.connection import parse_url
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError

Arg = bytes | str | int | float
# A command is its arguments, or bytes already in RESP (one command; code that builds its commands in C).
Command = Sequence[Arg] | bytes
READ_CHUNK = 1 << 16
INCOMPLETE = object()  # what the reader returns until a whole reply is buffered (not False: a reply can be 0)


def bulk(value: bytes) -> bytes:
    """One argument in RESP, for code that packs an argument once and reuses it in many commands."""
    return b"$%d\r\n%b\r\n" % (len(value), value)


def command(parts: Sequence[bytes]) -> bytes:
    """A RESP command from arguments packed by `bulk`."""
    return b"*%d\r\n%b" % (len(parts), b"".join(parts))


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

    def _send(self, commands: Sequence[Command]) -> None:
        assert self._streams is not None
        pack = hiredis.pack_command
        self._streams[1].write(b"".join(c if isinstance(c, bytes) else pack(tuple(c)) for c in commands))

    async def _receive(self, want: int) -> list[Any]:
        assert self._streams is not None
        reader, writer = self._streams
        await writer.drain()
        parser = self._reader
        replies: list[Any] = []
        while True:
            replies += iter(parser.gets, INCOMPLETE)  # every whole reply buffered, without a Python loop
            if len(replies) >= want:
                return replies
            data = await reader.read(READ_CHUNK)
            if not data:
                raise RedisConnectionError("connection closed by redis")
            parser.feed(data)

    async def _exchange(self, commands: Sequence[Command]) -> list[Any]:
        self._send(commands)
        return await self._receive(len(commands))

    @asynccontextmanager
    async def stream(self) -> AsyncIterator[Stream]:
        """Exclusive use of the connection for one batch sent in parts: Redis executes the first parts
        while the caller still computes the next ones; all replies are read at the end."""
        async with self._lock:
            try:
                async with asyncio.timeout(self.timeout):
                    if self._streams is None:
                        await self._connect()
                    yield Stream(self)
            except BaseException as exc:
                self._drop()
                if isinstance(exc, (OSError, TimeoutError, asyncio.IncompleteReadError)):
                    raise RedisConnectionError(f"redis batch failed: {exc!r}") from exc
                raise

    async def execute(self, commands: Sequence[Command]) -> list[Any]:
        if not commands:
            return []
        async with self.stream() as out:
            out.send(commands)
            return await out.receive()

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


class Stream:
    """Commands sent so far in one `RedisBatch.stream()`; `receive` returns all their replies, in order."""

    def __init__(self, batch: RedisBatch) -> None:
        self._batch = batch
        self._sent = 0

    def send(self, commands: Sequence[Command]) -> None:
        if commands:
            self._batch._send(commands)
            self._sent += len(commands)

    def send_packed(self, packed: bytes, commands: int) -> None:
        """`commands` RESP commands already packed together (code that builds many at once in C)."""
        if commands:
            self._batch._send((packed,))
            self._sent += commands

    async def receive(self) -> list[Any]:
        sent, self._sent = self._sent, 0
        return await self._batch._receive(sent)
