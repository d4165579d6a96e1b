"""Consumer-group lag of Catalyst's consumers, measured from Kafka and not from the consumers themselves.

A consumer cannot report its own lag once it has stopped, which is exactly when lag matters. This process
asks the brokers for each group's committed offsets and each partition's log-end offset on every scrape and
exports them under the metric names of the widely used kafka_exporter, so the alert rules and the dashboard
work the same whether operators run kafka_exporter against their cluster or this exporter.

Usage: python deploy/prometheus/kafka_lag_exporter.py   (settings: CATALYST_* variables, see LagExporterSettings)
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from prometheus_client import REGISTRY, CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector
from pydantic import Field

from services.common.consumer_lag import KafkaOffsets, Snapshot
from services.common.logging import configure_logging
from services.common.settings import CommonSettings, load

log = logging.getLogger("catalyst.kafka_lag_exporter")


class LagExporterSettings(CommonSettings):
    """Which groups to watch on which topics, and where to serve /metrics."""

    lag_metrics_port: int = Field(9105, ge=0, le=65535, description="Prometheus /metrics port")
    lag_request_timeout_ms: int = Field(2_000, ge=500, description="per admin request; a scrape waits at most ~3x")

    def watched(self) -> dict[str, list[str]]:
        """Consumer group -> the topics it consumes (recognition reads directory events from interactions)."""
        return {
            self.engagement_group_id: [self.topic_interactions],
            self.recognition_group_id: [self.topic_engagement, self.topic_interactions],
        }

    def topics(self) -> list[str]:
        """Every topic whose log-end offset is exported: event flow in, out, and dead letters."""
        return [self.topic_interactions, self.topic_engagement, self.topic_recognition, self.topic_deadletter]


class LagCollector(Collector):
    """Reads offsets on every scrape (always current; a scrape is a handful of small admin requests)."""

    def __init__(self, offsets: KafkaOffsets, topics: list[str], watched: Mapping[str, list[str]]) -> None:
        self._offsets = offsets
        self._topics = list(topics)
        self._watched = dict(watched)
        self._lock = threading.Lock()
        self._failures = 0

    def describe(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        """Names only, so registering does not already ask Kafka."""
        return self._families(Snapshot([], []), 1.0, 0)

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        with self._lock:
            try:
                current = self._offsets.read(self._topics, self._watched)
                up = 1.0
            except Exception:
                log.exception("reading offsets from Kafka failed")
                self._offsets.reset()
                self._failures += 1
                current, up = Snapshot([], []), 0.0
            failures = self._failures
        return self._families(current, up, failures)

    @staticmethod
    def _families(current: Snapshot, up: float, failures: int) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        group_labels = ["consumergroup", "topic", "partition"]
        lag = GaugeMetricFamily("kafka_consumergroup_lag", "Records the group has still to read", labels=group_labels)
        committed = GaugeMetricFamily(
            "kafka_consumergroup_current_offset", "Offset the group committed", labels=group_labels
        )
        newest = GaugeMetricFamily(
            "kafka_topic_partition_current_offset", "Log-end offset of the partition", labels=["topic", "partition"]
        )
        oldest = GaugeMetricFamily(
            "kafka_topic_partition_oldest_offset", "Oldest retained offset", labels=["topic", "partition"]
        )
        for p in current.partitions:
            newest.add_metric([p.topic, str(p.partition)], p.latest)
            oldest.add_metric([p.topic, str(p.partition)], p.oldest)
        for entry in current.lags:
            labels = [entry.group, entry.partition.topic, str(entry.partition.partition)]
            lag.add_metric(labels, entry.lag)
            if entry.committed is not None:
                committed.add_metric(labels, entry.committed)
        return iter(
            [
                lag,
                committed,
                newest,
                oldest,
                GaugeMetricFamily("kafka_lag_exporter_up", "1 when the last offset read from Kafka worked", value=up),
                CounterMetricFamily(
                    "kafka_lag_exporter_failures", "Scrapes whose offset read from Kafka failed", value=failures
                ),
            ]
        )


def serve(settings: LagExporterSettings, registry: CollectorRegistry = REGISTRY) -> KafkaOffsets:
    offsets = KafkaOffsets(settings.kafka_bootstrap, settings.lag_request_timeout_ms)
    registry.register(LagCollector(offsets, settings.topics(), settings.watched()))
    start_http_server(settings.lag_metrics_port, addr=settings.metrics_host, registry=registry)
    return offsets


def main() -> int:
    settings = load(LagExporterSettings)
    configure_logging("kafka-lag-exporter", settings.log_level)
    logging.getLogger("kafka").setLevel(logging.WARNING)
    offsets = serve(settings)
    log.info("serving consumer lag of %s on :%d", settings.watched(), settings.lag_metrics_port)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    offsets.reset()
    return 0


if __name__ == "__main__":
    sys.exit(main())
