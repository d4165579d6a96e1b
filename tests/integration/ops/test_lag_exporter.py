"""The consumer-lag exporter against a real broker: lag is what a stopped group has still to read."""

from __future__ import annotations

import time
import urllib.request

from kafka import KafkaAdminClient, KafkaProducer, TopicPartition
from kafka.structs import OffsetAndMetadata
from prometheus_client import CollectorRegistry

from deploy.prometheus.kafka_lag_exporter import LagCollector, LagExporterSettings, serve
from services.common.consumer_lag import KafkaOffsets, PartitionLag, PartitionOffsets
from services.engagement.worker.settings import EngagementWorkerSettings
from services.recognition.config import RecognitionSettings
from tests.conftest import free_port


def test_lag_counts_from_the_commit_or_from_the_oldest_retained_record() -> None:
    partition = PartitionOffsets("t", 0, oldest=10, latest=50)
    assert PartitionLag("g", partition, committed=45).lag == 5
    assert PartitionLag("g", partition, committed=None).lag == 40
    assert PartitionLag("g", partition, committed=3).lag == 40  # retention deleted what the group never read
    assert PartitionLag("g", partition, committed=50).lag == 0


def produce(bootstrap: str, topic: str, per_partition: dict[int, int]) -> None:
    producer = KafkaProducer(bootstrap_servers=bootstrap)
    for partition, count in per_partition.items():
        for i in range(count):
            producer.send(topic, key=b"k", value=f"{i}".encode(), partition=partition)
    producer.flush(30)
    producer.close()


def commit(bootstrap: str, group: str, offsets: dict[TopicPartition, int]) -> None:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        admin.alter_group_offsets(group, {tp: OffsetAndMetadata(o, "", -1) for tp, o in offsets.items()})
    finally:
        admin.close()


def test_exporter_reports_lag_offsets_and_dead_letters_from_the_broker(
    kafka_bootstrap: str, topics: dict[str, str]
) -> None:
    interactions = topics["interactions"]
    produce(kafka_bootstrap, interactions, {0: 7, 1: 3})
    produce(kafka_bootstrap, topics["deadletter"], {0: 2})
    group = f"catalyst-engagement-{interactions.rsplit('-', 1)[-1]}"
    commit(kafka_bootstrap, group, {TopicPartition(interactions, 0): 4})

    registry = CollectorRegistry()
    watched = {group: [interactions]}
    offsets = KafkaOffsets(kafka_bootstrap, 5000)
    registry.register(LagCollector(offsets, [topics["deadletter"]], watched))
    try:

        def value(name: str, **labels: str) -> float | None:
            return registry.get_sample_value(name, labels)

        lag = {"consumergroup": group, "topic": interactions}
        assert value("kafka_consumergroup_lag", **lag, partition="0") == 3
        assert value("kafka_consumergroup_lag", **lag, partition="1") == 3  # no commit: all of it
        assert value("kafka_consumergroup_lag", **lag, partition="2") == 0
        assert value("kafka_consumergroup_current_offset", **lag, partition="0") == 4
        assert value("kafka_consumergroup_current_offset", **lag, partition="1") is None
        assert value("kafka_topic_partition_current_offset", topic=interactions, partition="0") == 7
        assert value("kafka_topic_partition_current_offset", topic=topics["deadletter"], partition="0") == 2
        assert value("kafka_lag_exporter_up") == 1

        produce(kafka_bootstrap, interactions, {0: 5})
        assert value("kafka_consumergroup_lag", **lag, partition="0") == 8
    finally:
        offsets.reset()


def test_exporter_reports_down_when_kafka_is_unreachable() -> None:
    registry = CollectorRegistry()
    offsets = KafkaOffsets(f"127.0.0.1:{free_port()}", 1000)
    registry.register(LagCollector(offsets, ["t"], {"catalyst-engagement": ["t"]}))
    assert registry.get_sample_value("kafka_lag_exporter_up") == 0
    assert registry.get_sample_value("kafka_lag_exporter_failures_total") >= 1
    assert registry.get_sample_value("kafka_consumergroup_lag", {"consumergroup": "catalyst-engagement"}) is None


def test_exporter_serves_metrics_over_http(kafka_bootstrap: str, topics: dict[str, str]) -> None:
    port = free_port()
    interactions, engagement = topics["interactions"], topics["engagement"]
    settings = LagExporterSettings(
        kafka_bootstrap=kafka_bootstrap,
        topic_interactions=topics["interactions"],
        topic_engagement=topics["engagement"],
        topic_recognition=topics["recognition"],
        topic_deadletter=topics["deadletter"],
        metrics_host="127.0.0.1",
        lag_metrics_port=port,
    )
    offsets = serve(settings, CollectorRegistry())
    expected = [f'consumergroup="catalyst-recognition",partition="0",topic="{t}"' for t in (interactions, engagement)]
    expected.append(f'kafka_topic_partition_current_offset{{partition="0",topic="{topics["recognition"]}"}}')
    deadline = time.monotonic() + 30
    try:
        while True:  # a topic created a moment ago may have no partition leader yet
            body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=30).read().decode()
            if all(line in body for line in expected) or time.monotonic() > deadline:
                break
            time.sleep(0.5)
    finally:
        offsets.reset()
    assert "kafka_lag_exporter_up 1.0" in body
    for line in expected:
        assert line in body


def test_exporter_watches_the_groups_the_services_use_by_default() -> None:
    watched = LagExporterSettings().watched()
    engagement = EngagementWorkerSettings.model_fields["engagement_group_id"].default
    recognition = RecognitionSettings.model_fields["recognition_group_id"].default
    assert watched == {
        engagement: ["catalyst.interactions.v1"],
        recognition: ["catalyst.engagement.v1", "catalyst.interactions.v1"],
    }
