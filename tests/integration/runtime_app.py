"""A minimal faust app for the runtime test: counts events per employee into Redis, idempotently."""

from __future__ import annotations

import os

import faust
import redis.asyncio as aioredis
from catalyst.events.v1 import envelope_pb2

app = faust.App(
    os.environ["RUNTIME_APP_ID"],
    broker=f"kafka://{os.environ['CATALYST_KAFKA_BOOTSTRAP']}",
    store="memory://",
    datadir=os.environ["RUNTIME_DATA_DIR"],
    web_enabled=False,
    web_port=int(os.environ["RUNTIME_WEB_PORT"]),
    topic_partitions=6,
    topic_allow_declare=False,
    consumer_auto_offset_reset="earliest",
)
topic = app.topic(os.environ["CATALYST_TOPIC_INTERACTIONS"], key_type=bytes, value_type=bytes, value_serializer="raw")
store = aioredis.Redis.from_url(os.environ["CATALYST_REDIS_URL"])


@app.agent(topic, concurrency=1)
async def count(stream: faust.StreamT) -> None:
    async for value in stream:
        envelope = envelope_pb2.Envelope.FromString(value)
        if await store.sadd("runtime:seen", envelope.event_id):
            await store.hincrby("runtime:counts", envelope.employee_id, 1)


if __name__ == "__main__":
    app.main()
