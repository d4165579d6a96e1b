"""Proves the runtime end to end: protobuf events produced with kafka-python go through the real
broker into a faust-streaming agent that writes to the real Redis."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import redis
from catalyst.events.v1 import envelope_pb2
from google.protobuf.timestamp_pb2 import Timestamp
from kafka import KafkaProducer

from tests.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]


def make_event(i: int) -> envelope_pb2.Envelope:
    env = envelope_pb2.Envelope(
        event_id=f"runtime-{i}",
        producer="test",
        type="catalyst.events.v1.PostCreated",
        employee_id=f"emp-{i % 5}",
        department_id="dept-a",
        occurred_at=Timestamp(seconds=1_700_000_000 + i),
    )
    env.post_created.post_id = f"post-{i}"
    return env


def test_protobuf_events_flow_from_kafka_through_faust_into_redis(
    common_env: dict[str, str], redis_url: str, tmp_path: Path
) -> None:
    producer = KafkaProducer(bootstrap_servers=common_env["CATALYST_KAFKA_BOOTSTRAP"], acks="all")
    for i in range(50):
        env = make_event(i)
        producer.send(
            common_env["CATALYST_TOPIC_INTERACTIONS"], key=env.employee_id.encode(), value=env.SerializeToString()
        )
    producer.flush()
    producer.close()

    env = {
        **os.environ,
        **common_env,
        "RUNTIME_APP_ID": f"runtime-test-{uuid.uuid4().hex[:8]}",
        "RUNTIME_DATA_DIR": str(tmp_path / "faust"),
        "RUNTIME_WEB_PORT": str(free_port()),
        "PYTHONPATH": f"{ROOT}:{ROOT / 'gen'}",
    }
    worker = subprocess.Popen(
        [
            sys.executable,
            str(Path(__file__).with_name("runtime_app.py")),
            "worker",
            "-l",
            "warn",
        ],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    client = redis.Redis.from_url(redis_url)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            counts = {k.decode(): int(v) for k, v in client.hgetall("runtime:counts").items()}
            if sum(counts.values()) >= 50:
                break
            assert worker.poll() is None, worker.stdout.read().decode()[-3000:]
            time.sleep(0.5)
        assert counts == {f"emp-{n}": 10 for n in range(5)}
    finally:
        worker.terminate()
        try:
            worker.wait(30)
        except subprocess.TimeoutExpired:
            worker.kill()
