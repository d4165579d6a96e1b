"""Consumer-group lag read from Kafka itself (committed offsets against log-end offsets), so it is known
even while a consumer is down. Used by the lag exporter and by anything that waits for consumers to catch up."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from kafka import KafkaAdminClient, TopicPartition
from kafka.admin import OffsetSpec


@dataclass(frozen=True)
class PartitionOffsets:
    topic: str
    partition: int
    oldest: int
    latest: int


@dataclass(frozen=True)
class PartitionLag:
    group: str
    partition: PartitionOffsets
    committed: int | None

    @property
    def lag(self) -> int:
        """Records the group has still to read. Without a commit the group starts at the oldest record
        (Catalyst's consumers reset to earliest), so everything retained counts."""
        start = self.partition.oldest if self.committed is None else max(self.committed, self.partition.oldest)
        return max(0, self.partition.latest - start)


@dataclass(frozen=True)
class Snapshot:
    partitions: list[PartitionOffsets]
    lags: list[PartitionLag]


def snapshot(
    partitions: list[PartitionOffsets],
    watched: Mapping[str, list[str]],
    committed: Mapping[str, Mapping[TopicPartition, int]],
) -> Snapshot:
    """Pairs each watched group with the partitions of its topics (pure, so the lag arithmetic is testable)."""
    lags = [
        PartitionLag(group, p, committed.get(group, {}).get(TopicPartition(p.topic, p.partition)))
        for group, topics in watched.items()
        for p in partitions
        if p.topic in topics
    ]
    return Snapshot(partitions, lags)


class KafkaOffsets:
    """The blocking admin calls, one client reused across scrapes."""

    def __init__(self, bootstrap: str, timeout_ms: int) -> None:
        self._bootstrap = bootstrap
        self._timeout_ms = timeout_ms
        self._client: KafkaAdminClient | None = None

    def _admin(self) -> KafkaAdminClient:
        if self._client is None:
            self._client = KafkaAdminClient(
                bootstrap_servers=self._bootstrap,
                client_id="catalyst-lag-exporter",
                request_timeout_ms=self._timeout_ms,
                bootstrap_timeout_ms=self._timeout_ms,
                reconnect_backoff_max_ms=self._timeout_ms,
            )
        return self._client

    def reset(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def read(self, topics: list[str], watched: Mapping[str, list[str]]) -> Snapshot:
        admin = self._admin()
        described = admin.describe_topics(sorted({*topics, *(t for ts in watched.values() for t in ts)}))
        tps = [
            TopicPartition(t["name"], p["partition_index"])
            for t in described
            if t["error_code"] == 0
            for p in t["partitions"]
        ]
        latest = admin.list_partition_offsets({tp: OffsetSpec.LATEST for tp in tps})
        oldest = admin.list_partition_offsets({tp: OffsetSpec.EARLIEST for tp in tps})
        groups = admin.list_group_offsets({group: None for group in watched})
        committed = {
            group: {tp: meta.offset for tp, meta in offsets.items() if meta.offset >= 0}
            for group, offsets in groups.items()
        }
        partitions = [
            PartitionOffsets(tp.topic, tp.partition, oldest[tp].offset, latest[tp].offset)
            for tp in sorted(tps, key=lambda tp: (tp.topic, tp.partition))
        ]
        return snapshot(partitions, watched, committed)
