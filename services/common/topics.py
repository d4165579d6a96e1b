"""Topic declarations, read from deploy/topics.yaml (the one place they are written down), with the retention
of every delete-policy topic taken from the policy file (deploy/config/policy.yaml)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import yaml

from services.common.policy import load_policy, policy_path

DEFAULT_FILE = Path(__file__).resolve().parents[2] / "deploy" / "topics.yaml"


@dataclass(frozen=True)
class TopicSpec:
    key: str
    name: str
    partitions: int
    config: dict[str, str] = field(default_factory=dict)


@cache
def load_topics(path: str | None = None) -> dict[str, TopicSpec]:
    """Topic specs by logical key (interactions, engagement, recognition, deadletter)."""
    file = Path(path or os.environ.get("CATALYST_TOPICS_FILE", DEFAULT_FILE))
    raw = yaml.safe_load(file.read_text())["topics"]
    retention = load_policy(policy_path()).retention.topics
    specs = {}
    for key, spec in raw.items():
        if int(spec["partitions"]) < 1:
            raise ValueError(f"{file}: topic {key} needs at least one partition")
        config = {k: str(v) for k, v in (spec.get("config") or {}).items()}
        if "retention.ms" in config:
            raise ValueError(f"{file}: topic {key} states retention.ms; retention belongs in the policy file")
        if config.get("cleanup.policy", "delete") == "delete":
            if key not in retention:
                raise ValueError(f"{policy_path()}: retention.topics needs a limit for topic '{key}'")
            config["retention.ms"] = str(int(retention[key].total_seconds() * 1000))
        specs[key] = TopicSpec(key=key, name=str(spec["name"]), partitions=int(spec["partitions"]), config=config)
    unknown = sorted(set(retention) - set(specs))
    if unknown:
        raise ValueError(f"{policy_path()}: retention.topics names topics {file} does not declare: {unknown}")
    return specs


def topic_name(key: str) -> str:
    return load_topics()[key].name
