"""librdkafka's repeated reconnect failures reach the log once a minute, not many times a second."""

from __future__ import annotations

import logging

from services.feed.outbox import OncePerInterval


def record(message: str) -> logging.LogRecord:
    return logging.LogRecord("kafka", logging.ERROR, __file__, 1, message, None, None)


def test_a_repeated_message_passes_once_per_interval_whatever_its_timing_says() -> None:
    now = [0.0]
    once = OncePerInterval(60.0, clock=lambda: now[0])
    failed = "FAIL [producer-1]: 10.0.0.1:9092/1: Connect to 10.0.0.1:9092 failed (after {}ms in state CONNECT)"
    assert once.filter(record(failed.format(0)))
    now[0] = 30.0
    assert not once.filter(record(failed.format(3)))
    assert once.filter(record(failed.replace("10.0.0.1", "10.0.0.2").format(0))), "another broker is news"
    now[0] = 61.0
    assert once.filter(record(failed.format(1)))
