"""The relay's partitioner picks exactly the partition kafka-python's default one picks (Java's murmur2)."""

from __future__ import annotations

import pytest
from kafka.partitioner.default import DefaultPartitioner

from services.feed.outbox import RememberingPartitioner


class Cluster:
    def __init__(self, partitions: int) -> None:
        self._partitions = set(range(partitions))

    def topics(self) -> set[str]:
        return {"t"}

    def partitions_for_topic(self, topic: str) -> set[int]:
        return self._partitions

    def available_partitions_for_topic(self, topic: str) -> set[int]:
        return self._partitions


@pytest.mark.parametrize("partitions", [1, 6, 12])
def test_same_partition_as_the_default_partitioner_for_every_key(partitions: int) -> None:
    cluster = Cluster(partitions)
    remembering, default = RememberingPartitioner(max_keys=50), DefaultPartitioner()
    keys = [f"e-{i}".encode() for i in range(200)] + ["ä-€".encode(), b"", b"x" * 300]
    for _ in range(2):  # the second round answers from memory (and past max_keys, after a reset)
        for key in keys:
            assert remembering.partition("t", key, key, b"v", b"v", cluster) == default.partition(
                "t", key, key, b"v", b"v", cluster
            )


def test_an_unknown_topic_is_refused_like_the_default() -> None:
    with pytest.raises(ValueError):
        RememberingPartitioner().partition("other", b"k", b"k", b"v", b"v", Cluster(6))
