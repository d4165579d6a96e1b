"""The publisher process's metrics reach the worker's /metrics over the pipe between the two: the publisher
records each update, the worker applies it to its own `WorkerMetrics`. Operators scrape one endpoint per
worker, as before the publisher had a process of its own."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from services.engagement.metrics import WorkerMetrics

# the WorkerMetrics attributes the publisher updates (Retrying's and the Emitter's)
RELAYED = frozenset(
    {"score_changes", "rollover_marked", "emit_catching_up", "redis_latency", "redis_retries", "kafka_retries"}
)
METHODS = frozenset({"inc", "set", "observe"})
Update = tuple[str, tuple[str, ...], str, float]  # (metric, label values, method, value)


class _Recorder:
    """One relayed metric (or one label set of it), with the prometheus_client calls the publisher makes."""

    def __init__(self, relay: RelayedMetrics, name: str, labels: tuple[str, ...] = ()) -> None:
        self._relay = relay
        self._name = name
        self._labels = labels

    def labels(self, *values: str) -> _Recorder:
        return _Recorder(self._relay, self._name, values)

    def inc(self, amount: float = 1) -> None:
        self._relay.record(self._name, self._labels, "inc", amount)

    def set(self, value: float) -> None:
        self._relay.record(self._name, self._labels, "set", value)

    def observe(self, value: float) -> None:
        self._relay.record(self._name, self._labels, "observe", value)


class RelayedMetrics:
    """Stands in for `WorkerMetrics` in the publisher process (the same attribute names, for the relayed
    ones). Counter increments add up and a gauge keeps its last value until drained; observations are kept
    one by one, so the worker's histograms stay exact."""

    def __init__(self) -> None:
        self._totals: dict[tuple[str, tuple[str, ...], str], float] = {}
        self._observed: list[Update] = []

    def __getattr__(self, name: str) -> _Recorder:
        if name not in RELAYED:
            raise AttributeError(name)
        return _Recorder(self, name)

    def record(self, name: str, labels: tuple[str, ...], method: str, value: float) -> None:
        if method == "observe":
            self._observed.append((name, labels, method, value))
            return
        key = (name, labels, method)
        self._totals[key] = self._totals.get(key, 0.0) + value if method == "inc" else value

    def drain(self) -> list[Update]:
        """The updates recorded since the last drain."""
        updates = [(name, labels, method, value) for (name, labels, method), value in self._totals.items()]
        updates += self._observed
        self._totals, self._observed = {}, []
        return updates


def encode(updates: Iterable[Update]) -> bytes:
    """One line of the relay."""
    return json.dumps([[name, list(labels), method, value] for name, labels, method, value in updates]).encode() + b"\n"


def decode(line: bytes) -> list[Update]:
    """The updates of one relay line; ValueError for anything but relayed updates (nothing of it is applied)."""
    rows: Any = json.loads(line)
    if not isinstance(rows, list):
        raise ValueError("a relay line is a list of updates")
    updates: list[Update] = []
    for row in rows:
        if not (isinstance(row, list) and len(row) == 4):
            raise ValueError(f"not an update: {row!r}")
        name, labels, method, value = row
        if name not in RELAYED or method not in METHODS:
            raise ValueError(f"not a relayed update: {name}.{method}")
        if not (isinstance(labels, list) and all(isinstance(v, str) for v in labels)):
            raise ValueError(f"labels of {name} are not strings: {labels!r}")
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise ValueError(f"value of {name} is not a number: {value!r}")
        updates.append((name, tuple(labels), method, value))
    return updates


def apply(metrics: WorkerMetrics, updates: Iterable[Update]) -> None:
    """Applies relayed updates to the worker's metrics."""
    for name, labels, method, value in updates:
        metric: Any = getattr(metrics, name)
        if labels:
            metric = metric.labels(*labels)
        getattr(metric, method)(value)
