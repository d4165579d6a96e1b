"""The worker's garbage-collector policy, shared by the worker, its publisher process and the in-process
benchmark."""

from __future__ import annotations

import gc


def collect_rarely() -> None:
    """A batch of 10,000 records allocates a few hundred thousand container objects that live until Redis has
    the batch (aiokafka's records, the plan's lists and dicts); a young-generation collection scans every one
    still alive, however rarely it runs. With the default threshold (700) it ran thousands of times per batch;
    at 100,000 still ~3 times per batch, 16 % of a backfill's time (measured, ~18 ms each). At 1,000,000 it
    runs about once per few batches. Nothing the worker keeps forms cycles, so little waits for a collection
    meanwhile; what exists at start-up is left out of every scan."""
    gc.freeze()
    gc.set_threshold(1_000_000, 50, 100)


def settle() -> None:
    """Called when the consumer has caught up: collect what is garbage now, then leave everything still alive
    (the state cache, connections, the app) out of every later scan. A full collection traverses all of it
    otherwise (50-185 ms on this VM, measured) at a moment CPython picks, stalling the event loop in the steady
    state; after this, one only scans what was allocated since. The pause happens once per catch-up."""
    gc.collect()
    gc.freeze()
