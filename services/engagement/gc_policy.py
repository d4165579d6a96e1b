"""The worker's garbage-collector policy, shared by the worker and the in-process benchmark."""

from __future__ import annotations

import gc


def collect_rarely() -> None:
    """A batch allocates hundreds of thousands of short-lived tuples; with the default threshold (700) the
    cyclic collector runs thousands of times per batch and rescans the long-lived slice cache each time.
    The cache holds no cycles, so collect rarely and leave what exists at start-up out of every scan."""
    gc.freeze()
    gc.set_threshold(100_000, 50, 100)
