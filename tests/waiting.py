"""Waiting for a fact in a synchronous test: polled, never a fixed sleep that hopes the fact holds by then."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def until(probe: Callable[[], T], ok: Callable[[T], bool], timeout: float = 90) -> T:
    """Polls a fact (a key gone, a metric value, an API answer) until it holds; returns the value that did."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if ok(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not reached within {timeout}s; last value: {value!r}")
        time.sleep(0.2)
