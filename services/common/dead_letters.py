"""The dead-letter record every consumer writes for a record it cannot process: the record as it was, where it
came from, and why, so nothing is lost and an operator can replay it once the cause is fixed."""

from __future__ import annotations

from catalyst.events.v1 import envelope_pb2


def dead_letter(
    topic: str, partition: int, offset: int, key: bytes | None, value: bytes | None, reason: str, consumer: str
) -> bytes:
    """A serialized `catalyst.events.v1.DeadLetter`, stamped with the time it failed."""
    letter = envelope_pb2.DeadLetter(
        source_topic=topic,
        source_partition=partition,
        source_offset=offset,
        key=key or b"",
        value=value or b"",
        reason=reason,
        consumer=consumer,
    )
    letter.failed_at.GetCurrentTime()
    return letter.SerializeToString()
