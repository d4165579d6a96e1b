"""Targets, PASS/FAIL, and the report files (bench/results/report.md and report.json)."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

MIN_RATE = 25_000.0  # events/s sustained by the worker
MIN_NAIVE_RATIO = 5.0  # worker rate / naive rate
LATENCY_RATE = 12_500.0  # offered events/s at which the p99 target is judged
MAX_P99_SECONDS = 0.100  # event-to-score at LATENCY_RATE
MAX_BYTES_PER_EMPLOYEE = 2048.0


@dataclass(frozen=True)
class Measured:
    """One consumer's run over the loaded events."""

    name: str
    events: int
    wall_seconds: float
    cpu_seconds: float

    @property
    def rate(self) -> float:
        return self.events / self.wall_seconds if self.wall_seconds > 0 else 0.0

    @property
    def cpu_per_million(self) -> float:
        return self.cpu_seconds / self.events * 1_000_000 if self.events else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "events_per_second": self.rate, "cpu_seconds_per_million": self.cpu_per_million}


@dataclass(frozen=True)
class Target:
    """One line of the targets table; `passed` is None for a figure that is reported but not judged (`note`
    says why)."""

    name: str
    wanted: str
    value: float
    passed: bool | None
    note: str = ""


def targets(
    worker_rate: float,
    naive_rate: float,
    p99: float,
    offered_rate: float,
    bytes_per_employee: float,
    worker_cpu_per_million: float,
) -> list[Target]:
    """The issue's speed and memory targets. The p99 target is defined at LATENCY_RATE: at any other offered
    rate (--latency-rate, --quick) it is reported but not judged."""
    ratio = worker_rate / naive_rate if naive_rate else 0.0
    at_target_rate = offered_rate == LATENCY_RATE
    return [
        Target("sustained throughput (events/s)", f">= {MIN_RATE:,.0f}", worker_rate, worker_rate >= MIN_RATE),
        Target("worker / naive", f">= {MIN_NAIVE_RATIO:g}x", ratio, ratio >= MIN_NAIVE_RATIO),
        Target(
            f"p99 event-to-score at {LATENCY_RATE:,.0f} events/s (ms)",
            f"<= {MAX_P99_SECONDS * 1000:g}",
            p99 * 1000,
            not math.isnan(p99) and p99 <= MAX_P99_SECONDS if at_target_rate else None,
            "" if at_target_rate else f"measured at {offered_rate:,.0f} events/s: not judged",
        ),
        Target(
            "Redis bytes per active employee",
            f"<= {MAX_BYTES_PER_EMPLOYEE:,.0f}",
            bytes_per_employee,
            0 < bytes_per_employee <= MAX_BYTES_PER_EMPLOYEE,
        ),
        Target(
            "worker CPU-seconds per million events (backfill, the worker process alone)",
            "lower is better",
            worker_cpu_per_million,
            None,
            "reported, for comparing changes",
        ),
    ]


def verdict(target: dict[str, Any]) -> str:
    """PASS, FAIL, or the reason a figure was not judged."""
    if target["passed"] is None:
        return target.get("note") or "not judged"
    return "PASS" if target["passed"] else "FAIL"


def _warm_up(lat: dict) -> str:
    seconds = lat.get("warmup_seconds", 0.0)
    if not seconds:
        return ""
    costs = lat.get("warmup_broker_cpu_us_per_event") or []
    rounds = (
        f" in {len(costs)} rounds, until the broker's CPU per event had settled ("
        + ", ".join(f"{c:,.0f}" for c in costs)
        + " µs per round)"
        if costs
        else ""
    )
    shares = lat.get("broker_warmup_jit_shares") or []
    broker = (
        f"the broker's own warm-up ({len(shares)} rounds of the same load on a topic of its own, until its JIT"
        " compilers were quiet; their share of a core by round: " + ", ".join(f"{s:.2f}" for s in shares) + ") and "
        if shares
        else ""
    )
    return f", after {broker}at least {seconds:g} s of the same load that were not measured (warm-up{rounds})"


def _machine_share(lat: dict) -> str:
    """The rest of the machine's work per event in the phase: Redis, the broker (when it runs here), the load
    generator."""
    parts = [
        f"{name} {_num(lat[key])} CPU-µs"
        for name, key in (
            ("Redis", "redis_cpu_us_per_event"),
            ("the broker", "broker_cpu_us_per_event"),
            ("the load generator (this process)", "generator_cpu_us_per_event"),
        )
        if lat.get(key) is not None
    ]
    return f" Per event the phase also cost {', '.join(parts)}." if parts else ""


def _redis_commands(lat: dict) -> list[str]:
    """Where Redis' time went in the phase, by its own accounting (INFO commandstats)."""
    rows = lat.get("redis_commands") or {}
    if not rows:
        return []
    return [
        "",
        "| Redis command (INFO commandstats) | calls per event | µs per event |",
        "|---|---:|---:|",
        *(f"| {name} | {row['calls_per_event']:.2f} | {row['us_per_event']:.1f} |" for name, row in rows.items()),
    ]


def _num(value: float, digits: int = 0) -> str:
    return "n/a" if math.isnan(value) else f"{value:,.{digits}f}"


def markdown(report: dict[str, Any]) -> str:
    cfg, runs, lat, mem = report["config"], report["runs"], report["latency"], report["memory"]
    quick = " — QUICK MODE (smoke test, not a measurement)" if cfg["quick"] else ""
    lines = [
        "# Engagement benchmark",
        "",
        f"Run at {report['environment']['started_at']} on {report['environment']['cpus']} CPU(s), "
        f"Python {report['environment']['python']}; broker {cfg['bootstrap']}, topic `{cfg['topic']}` "
        f"({cfg['partitions']} partitions), {cfg['events']:,} events ({cfg['employees']:,} employees, "
        f"{cfg['departments']} departments, {cfg['days']} days of event time){quick}.",
        *([f"Worker environment overrides: `{cfg['worker_env']}`."] if cfg.get("worker_env") else []),
        *(
            [
                f"The worker process ran on CPU {cfg['cores']['worker']} alone; the publisher, Redis, the broker "
                f"and this process (the load generator) on CPU(s) {cfg['cores']['others']} (--dedicated-core)."
            ]
            if cfg.get("cores")
            else ["No CPU was kept for the worker (--no-dedicated-core, or several workers): it shared every CPU."]
        ),
        *(
            [f"{cfg['workers']} worker processes in one group (scale-out by partitions)."]
            if cfg.get("workers", 1) > 1
            else []
        ),
        f"Loading took {report['load']['seconds']:.1f} s ({report['load']['events_per_second']:,.0f} events/s). "
        f"Load average at the end: {report['environment']['load_average_at_end']:.1f} "
        "(the machine is shared: a load above the CPU count means every process got less than a core).",
        "",
        "## Throughput (same topic, same machine, one after the other)",
        "",
        "| consumer | events | wall s | events/s | CPU s | CPU s per million events |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for key in ("raw", "naive", "worker"):
        r = runs[key]
        lines.append(
            f"| {r['name']} | {r['events']:,} | {r['wall_seconds']:.1f} | {r['events_per_second']:,.0f} | "
            f"{r['cpu_seconds']:.1f} | {r['cpu_seconds_per_million']:.1f} |"
        )
    ratios = report["ratios"]
    w = report["worker_detail"]
    lines += [
        "",
        f"Ratios: worker / naive = **{ratios['worker_over_naive']:.2f}x**, worker / raw ceiling = "
        f"**{ratios['worker_over_raw']:.3f}**.",
        f"Worker wall time counts from its first processed event to all {cfg['partitions']} partitions committed "
        f"to the end (start-up took {w['startup_seconds']:.1f} s and is left out; spawn to committed: "
        f"{w['spawn_to_committed_seconds']:.1f} s). All events processed after {w['processed_seconds']:.1f} s; "
        f"the worker handled {w['batches']:,.0f} batches of {w['loaded'] / max(1.0, w['batches']):,.0f} records "
        f"on average in {1000 * w['batch_seconds'] / max(1.0, w['batches']):.1f} ms each, and the publisher "
        f"published {w['score_changes']:,.0f} ScoreChanged events meanwhile. "
        f"The CPU column is both processes: the worker {w['worker_cpu_seconds']:.1f} s "
        f"(**{w['worker_cpu_seconds_per_million']:.1f} s per million events**), the publisher "
        f"{w['publisher_cpu_seconds']:.1f} s ({w['publisher_cpu_seconds_per_million']:.1f} s per million events). "
        f"The naive consumer ran over the first {runs['naive']['events']:,} events.",
        *(
            []
            if w["complete"]
            else [
                "",
                f"**Partial run:** within the time budget the worker committed {runs['worker']['events']:,} of "
                f"{w['loaded']:,} events; the rate above is over that part.",
            ]
        ),
        "",
        "## Latency",
        "",
    ]
    if lat.get("fresh_worker_at_end_of_topic"):
        lines += [
            "The throughput run was partial, so latency was measured with a fresh worker group that started at "
            "the end of the topic, on the same Redis state (the publisher may still have had the first run's backlog).",
            "",
        ]
    lines += [
        f"Offered {_num(lat['offered_rate'])} events/s ({lat['offered_by']}) "
        f"for {lat['seconds']:.1f} s{_warm_up(lat)} "
        f"({lat['events']:,} events); {lat['samples']:,.0f} samples of the worker's "
        "`catalyst_engagement_event_to_score_seconds` histogram (record timestamp at send -> state written in "
        "Redis, which is when the EngagementService answers with the new score).",
        "",
        f"p50 = **{_num(lat['p50_ms'], 1)} ms**, p99 = **{_num(lat['p99_ms'], 1)} ms** "
        "(interpolated within histogram buckets).",
        "",
        f"Steady state: the worker used {_num(lat['worker_cpu_us_per_event'])} CPU-µs per event in batches of "
        f"{_num(lat['mean_batch_events'])} records on average, each handled (planned and written to Redis) in "
        f"{_num(lat['mean_batch_ms'], 1)} ms; planning and writing batches added up to "
        f"{lat['handling_share']:.0%} of the phase's wall time (a batch is planned while Redis writes the one "
        f"before, so the two overlap). The publisher used {_num(lat['publisher_cpu_us_per_event'])} CPU-µs per "
        f"event and published {lat['score_changes']:,.0f} ScoreChanged events.{_machine_share(lat)}",
        *_redis_commands(lat),
        "",
        "## Redis memory",
        "",
        f"`used_memory` grew by {mem['used_memory_delta']:,} bytes for {mem['employees_with_state']:,} employees "
        f"with state ({mem['days_of_history_covered']:.0f} days of history): "
        f"**{_num(mem['bytes_per_employee'])} bytes per active employee** "
        "(everything included: state hashes, leaderboards, department sets, indexes).",
        *(
            [
                f"Sample of {mem['sample_employees']} employees: "
                f"state hash {mem['sample_state_hash_bytes']:,.0f} bytes "
                f"({mem['sample_state_fields']:.1f} fields: counters per day and per colleague a day, totals, "
                "newest values and a mark per source partition: services/engagement/model/state.py); "
                f"{mem['sample_share_compact_encoding']:.0%} of them in Redis' compact listpack encoding "
                "(the rest are hash tables)."
            ]
            if mem.get("sample_employees")
            else []
        ),
        *(
            [
                "",
                "| key family | bytes (MEMORY USAGE) | per employee with state |",
                "|---|---:|---:|",
                *(
                    f"| {family} | {used:,} | {used / max(1, mem['employees_with_state']):,.0f} |"
                    for family, used in mem["bytes_by_family"].items()
                ),
            ]
            if mem.get("bytes_by_family")
            else []
        ),
        "",
        "## Targets",
        "",
        "| target | wanted | measured | result |",
        "|---|---|---:|---|",
    ]
    for t in report["targets"]:
        lines.append(f"| {t['name']} | {t['wanted']} | {_num(t['value'], 1)} | {verdict(t)} |")
    if report.get("profile"):
        lines += ["", "## Worker profile (py-spy, share of samples)", "", "```", *report["profile"], "```"]
    return "\n".join(lines) + "\n"


def _finite(value: Any) -> Any:
    """NaN (no samples) becomes null: JSON has no NaN."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def write(report: dict[str, Any], out: Path) -> tuple[Path, Path]:
    out.mkdir(parents=True, exist_ok=True)
    md, js = out / "report.md", out / "report.json"
    md.write_text(markdown(report))
    js.write_text(json.dumps(_finite(report), indent=2))
    return md, js
