"""Topic declarations, read from deploy/topics.yaml (the one place they are written down)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import yaml

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
    specs = {}
    for key, spec in raw.items():
        if int(spec["partitions"]) < 1:
            raise ValueError(f"{file}: topic {key} needs at least one partition")
        specs[key] = TopicSpec(
            key=key,
            name=str(spec["name"]),
            partitions=int(spec["partitions"]),
            config={k: str(v) for k, v in (spec.get("config") or {}).items()},
        )
    return specs


def topic_name(key: str) -> str:
    return load_topics()[key].name
