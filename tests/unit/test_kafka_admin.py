"""Broker readiness answers at once when nothing listens (kafka-python's admin client alone could retry for
minutes), and sees a listening port."""

from __future__ import annotations

import socket
import time

from services.common.kafka_admin import broker_ready, listening
from tests.conftest import free_port


def test_a_closed_port_is_not_ready_and_the_answer_comes_at_once() -> None:
    port = free_port()  # nothing listens there
    started = time.monotonic()
    assert not broker_ready(f"127.0.0.1:{port}")
    assert time.monotonic() - started < 5


def test_any_listening_bootstrap_address_counts() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        assert listening(f"127.0.0.1:1, 127.0.0.1:{port}")
    assert not listening("not-an-address")
