"""What the rules and dashboards may reference: every series Catalyst's processes export, and the metric
names a PromQL expression uses (a small tokenizer; enough for the expressions we write)."""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from prometheus_client import CollectorRegistry

from deploy.prometheus.kafka_lag_exporter import LagCollector
from services.common.consumer_lag import KafkaOffsets
from services.common.grpc_server import GrpcMetrics
from services.engagement.publisher.publisher import PublisherMetrics
from services.engagement.worker.metrics import WorkerMetrics
from services.feed.outbox import RelayMetrics
from services.recognition.metrics import RecognitionMetrics

ROOT = Path(__file__).resolve().parents[3]
RULES_DIR = ROOT / "deploy" / "prometheus" / "rules"

# Series Prometheus itself adds to every target.
PROMETHEUS_SERIES = {"up", "scrape_duration_seconds", "scrape_samples_scraped"}
KEYWORDS = {
    "and",
    "or",
    "unless",
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "bool",
    "offset",
    "inf",
    "nan",
}
_SUFFIXES = {"counter": ["_total", "_created"], "histogram": ["_bucket", "_count", "_sum", "_created"]}


def exported_series() -> set[str]:
    """Series names exactly as /metrics shows them, built from each process's metric definitions."""
    registry = CollectorRegistry()
    GrpcMetrics(registry)
    RelayMetrics(registry)
    RecognitionMetrics(registry)
    WorkerMetrics(registry)
    PublisherMetrics(registry)
    lag = LagCollector(KafkaOffsets("127.0.0.1:1", 500), [], {})  # describe() never touches Kafka
    names: set[str] = set()
    for family in [*registry.collect(), *lag.describe()]:
        names |= {family.name + s for s in _SUFFIXES.get(family.type, [""])}
    return names


def recording_rule_names() -> set[str]:
    groups = yaml.safe_load((RULES_DIR / "recording.yml").read_text())["groups"]
    return {rule["record"] for group in groups for rule in group["rules"]}


def metric_names(expr: str) -> set[str]:
    """Metric (and recording rule) names used by a PromQL expression."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # string literals
    text = re.sub(r"\{[^}]*\}", "", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", "", text)  # ranges and subqueries
    text = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", text)
    text = re.sub(r"\$\{?\w+\}?", "", text)  # Grafana variables ($__rate_interval, $job)
    names = set()
    for match in re.finditer(r"[a-zA-Z_:][a-zA-Z0-9_:]*(?=\s*(\(|\W|$))", text):
        name = match.group(0)
        followed_by_call = text[match.end() :].lstrip().startswith("(")
        if followed_by_call or name.lower() in KEYWORDS or re.fullmatch(r"\d+[smhdwy]", name):
            continue
        names.add(name)
    return names


def known_series() -> set[str]:
    return exported_series() | recording_rule_names() | PROMETHEUS_SERIES
