"""Reading the worker's Prometheus metrics and turning histogram buckets into percentiles (pure parts)."""

from __future__ import annotations

import json
import math
import urllib.request
from collections.abc import Mapping

from prometheus_client.parser import text_string_to_metric_families


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a /metrics page, keyed by (name, sorted labels)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def health(port: int) -> dict:
    """The worker's /health page ({} while it is not answering)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as response:
            return json.loads(response.read().decode())
    except (OSError, ValueError):
        return {}


def total(samples: Mapping[tuple[str, tuple[tuple[str, str], ...]], float], name: str) -> float:
    """Sum of a metric over all its label values."""
    return sum(v for (n, _), v in samples.items() if n == name)


def grown(
    after: Mapping[tuple[str, tuple[tuple[str, str], ...]], float],
    before: Mapping[tuple[str, tuple[tuple[str, str], ...]], float],
    name: str,
) -> float:
    """How much a metric (summed over its label values) grew between two scrapes."""
    return total(after, name) - total(before, name)


def buckets(samples: Mapping[tuple[str, tuple[tuple[str, str], ...]], float], name: str) -> dict[float, float]:
    """Cumulative histogram counts by upper bound (+Inf included)."""
    out = {}
    for (n, labels), value in samples.items():
        if n == f"{name}_bucket":
            le = dict(labels)["le"]
            out[math.inf if le == "+Inf" else float(le)] = value
    return out


def delta(after: Mapping[float, float], before: Mapping[float, float]) -> dict[float, float]:
    return {le: count - before.get(le, 0.0) for le, count in after.items()}


def quantile(cumulative: Mapping[float, float], q: float) -> float:
    """The q-quantile, interpolated linearly within its bucket (like PromQL's histogram_quantile).

    Returns the upper bound when the quantile lands in the +Inf bucket's predecessor's range end, and
    NaN without samples."""
    bounds = sorted(cumulative)
    count = cumulative[bounds[-1]] if bounds else 0.0
    if count <= 0:
        return math.nan
    rank = q * count
    lower, below = 0.0, 0.0
    for le in bounds:
        cum = cumulative[le]
        if cum >= rank:
            if math.isinf(le):
                return lower
            inside = cum - below
            return lower + (le - lower) * ((rank - below) / inside if inside else 1.0)
        lower, below = le, cum
    return bounds[-1]


def command_costs(
    before: Mapping[str, tuple[int, int]], after: Mapping[str, tuple[int, int]], events: int, top: int = 8
) -> dict[str, dict[str, float]]:
    """Redis' own accounting of a phase, per event: calls and µs by command, the costliest first (a script's
    time includes the commands it runs, which are listed under their own names too)."""
    rows = {}
    for name, (calls, usec) in after.items():
        calls0, usec0 = before.get(name, (0, 0))
        if calls > calls0 and events:
            rows[name] = {"calls_per_event": (calls - calls0) / events, "us_per_event": (usec - usec0) / events}
    ranked = sorted(rows.items(), key=lambda item: -item[1]["us_per_event"])
    return dict(ranked[:top])
