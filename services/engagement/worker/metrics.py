"""Prometheus metrics of the engagement worker (served on worker_metrics_port, default 9103)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

# Every 10 ms up to just past the 100 ms objective (docs/benchmark.md): a quantile is interpolated linearly within
# its bucket, which reads high where the tail falls within it (tens of ms in a bucket from 100 to 150 ms).
LATENCY_BUCKETS = (0.005, *(n / 100 for n in range(1, 11)), 0.11, 0.125, 0.15, 0.2, 0.25, 0.5, 1, 2.5, 5, 10, 30)
REDIS_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5)


class WorkerMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        p = "catalyst_engagement_"
        self.events = Counter(p + "events", "Records processed, by event kind", ["kind"], registry=registry)
        self.dead_letters = Counter(
            p + "dead_letters", "Records sent to the dead-letter topic, by reason", ["reason"], registry=registry
        )
        self.late_ignored = Counter(
            p + "late_ignored", "Ops ignored because their day is older than the longest window", registry=registry
        )
        self.duplicates = Counter(
            p + "duplicates", "Ops skipped because their offset was already applied (replays)", registry=registry
        )
        self.event_to_score = Histogram(
            p + "event_to_score_seconds",
            "Record timestamp to Redis state updated (sampled per batch)",
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.redis_latency = Histogram(
            p + "redis_seconds", "Redis round trips, by operation", ["op"], buckets=REDIS_BUCKETS, registry=registry
        )
        self.redis_retries = Counter(
            p + "redis_retries", "Transient Redis faults retried, by operation", ["op"], registry=registry
        )
        self.kafka_retries = Counter(p + "kafka_retries", "Failed publishes retried", ["topic"], registry=registry)
        self.lag = Gauge(
            p + "consumer_lag", "End offset minus committed offset, per partition", ["partition"], registry=registry
        )
        self.batch_size = Histogram(
            p + "batch_events",
            "Records per processing batch",
            buckets=(1, 10, 50, 100, 250, 500, 1000, 2000, 5000, 10_000),
            registry=registry,
        )
        self.batch_seconds = Histogram(
            p + "batch_seconds",
            "Time to handle one batch (plan, Redis writes, dead letters; a batch is planned while the one before is "
            "written, so batches overlap)",
            buckets=REDIS_BUCKETS,
            registry=registry,
        )
        self.tombstones = Counter(p + "tombstones", "Tombstones published for forgotten employees", registry=registry)
        self.watermark = Gauge(p + "watermark_seconds", "Event-time watermark (newest occurred_at)", registry=registry)
