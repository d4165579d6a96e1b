"""Prometheus metrics of the recognition service (one registry per process, a fresh one per test)."""

from __future__ import annotations

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram


class RecognitionMetrics:
    def __init__(self, registry: CollectorRegistry = REGISTRY) -> None:
        self.grants = Counter("recognition_badge_grants", "Badge tiers granted", ["badge", "tier"], registry=registry)
        self.revocations = Counter(
            "recognition_badge_revocations", "Badge tiers revoked", ["badge", "tier"], registry=registry
        )
        self.holders = Gauge("recognition_badge_holders", "Employees holding any tier", ["badge"], registry=registry)
        self.evaluation = Histogram(
            "recognition_evaluation_seconds",
            "Time to evaluate one score change and store its outcome",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
            registry=registry,
        )
        self.consumed = Counter(
            "recognition_records_consumed",
            "Records read from Kafka, by topic and outcome (applied, unchanged, ignored, forgotten, erased: about a "
            "person erased before, dead_letter)",
            ["topic", "outcome"],
            registry=registry,
        )
        self.retries = Counter(
            "recognition_retries",
            "Transient faults (Redis or Kafka away) the consumer retried, by step (handle, commit, sweep)",
            ["step"],
            registry=registry,
        )
        self.revocation_clock = Gauge(
            "recognition_revocation_clock_seconds",
            "Newest ScoreChanged event time up to which ended grace periods were revoked",
            registry=registry,
        )
        self.dead_letters = Counter(
            "recognition_dead_letters", "Records sent to the dead-letter topic", registry=registry
        )
        self.published = Counter("recognition_events_published", "Outbox records published to Kafka", registry=registry)
        self.publish_failures = Counter(
            "recognition_publish_failures", "Failed outbox publish rounds (retried)", registry=registry
        )
        self.retention_removed = Counter(
            "recognition_retention_removed",
            "Records removed because they passed the policy's retention, by kind (revoked_badges)",
            ["kind"],
            registry=registry,
        )
        self.stream_clients = Gauge("recognition_stream_clients", "Open StreamBadgeEvents calls", registry=registry)
