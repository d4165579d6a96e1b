"""The policy's topic retention reaches the broker: on new topics, and on existing ones when it changes."""

from __future__ import annotations

import uuid
from dataclasses import replace

from kafka.admin import ConfigResource, ConfigResourceType

from services.common.kafka_admin import admin, delete_topics, ensure_topics
from services.common.policy import load_policy, policy_path
from services.common.topics import load_topics


def broker_retention_ms(bootstrap: str, topic: str) -> str:
    client = admin(bootstrap)
    try:
        answer = client.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
        (configs,) = (by_name[topic] for by_name in answer.values())
        return str(configs["retention.ms"]["value"])
    finally:
        client.close()


def test_topic_retention_comes_from_the_policy_and_follows_its_changes(kafka_bootstrap: str) -> None:
    spec = load_topics()["recognition"]
    topic = replace(spec, name=f"{spec.name}.retention-{uuid.uuid4().hex[:8]}")
    limit = load_policy(policy_path()).retention.topics["recognition"]
    try:
        assert ensure_topics(kafka_bootstrap, [topic]) == [topic.name]
        assert broker_retention_ms(kafka_bootstrap, topic.name) == str(int(limit.total_seconds() * 1000))

        shorter = replace(topic, config={**topic.config, "retention.ms": "86400000"})
        assert ensure_topics(kafka_bootstrap, [shorter]) == []  # exists: its config is set, not recreated
        assert broker_retention_ms(kafka_bootstrap, topic.name) == "86400000"
    finally:
        delete_topics(kafka_bootstrap, [topic.name])
