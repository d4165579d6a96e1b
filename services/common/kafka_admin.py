"""Creating topics and checking broker readiness with kafka-python's admin client (blocking)."""

from __future__ import annotations

import socket
from collections.abc import Iterable

from kafka import KafkaAdminClient
from kafka.admin import ConfigResource, ConfigResourceType, NewTopic
from kafka.errors import TopicAlreadyExistsError

from services.common.topics import TopicSpec


def admin(bootstrap: str, timeout_ms: int = 10_000) -> KafkaAdminClient:
    return KafkaAdminClient(
        bootstrap_servers=bootstrap,
        client_id="catalyst-admin",
        request_timeout_ms=timeout_ms,
        bootstrap_timeout_ms=timeout_ms,
    )


def listening(bootstrap: str, timeout_s: float = 1.0) -> bool:
    """True when some bootstrap address accepts a TCP connection. Checked first because kafka-python 3.0.12's
    admin client, pointed at a closed port, was seen retrying for minutes past its bootstrap timeout."""
    for address in bootstrap.split(","):
        host, _, port = address.strip().rpartition(":")
        try:
            with socket.create_connection((host.strip("[]") or "localhost", int(port)), timeout=timeout_s):
                return True
        except (OSError, ValueError):
            continue
    return False


def broker_ready(bootstrap: str) -> bool:
    """True once the broker answers metadata requests."""
    if not listening(bootstrap):
        return False
    try:
        client = admin(bootstrap, timeout_ms=3000)
    except Exception:
        return False
    try:
        client.list_topics()
        return True
    except Exception:
        return False
    finally:
        client.close()


def ensure_topics(bootstrap: str, specs: Iterable[TopicSpec], replication: int = 1) -> list[str]:
    """Creates the topics that do not exist yet and sets the declared config (retention) on those that do, so a
    changed policy reaches existing topics; returns the names it created."""
    client = admin(bootstrap)
    try:
        existing = set(client.list_topics())
        created = []
        for spec in specs:
            if spec.name in existing:
                client.alter_configs([ConfigResource(ConfigResourceType.TOPIC, spec.name, configs=spec.config)])
                continue
            try:
                client.create_topics([NewTopic(spec.name, spec.partitions, replication, topic_configs=spec.config)])
                created.append(spec.name)
            except TopicAlreadyExistsError:
                pass
        return created
    finally:
        client.close()


def delete_topics(bootstrap: str, names: list[str]) -> None:
    client = admin(bootstrap)
    try:
        client.delete_topics(names)
    finally:
        client.close()
