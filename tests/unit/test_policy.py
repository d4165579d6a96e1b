"""The policy file: the shipped one is valid, and a wrong switch stops start-up with a message naming it."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
import yaml

from services.common.policy import DEFAULT_POLICY_FILE, load_policy
from services.common.topics import load_topics


def _write(tmp_path: Path, change: dict) -> Path:
    raw = yaml.safe_load(DEFAULT_POLICY_FILE.read_text())
    raw["retention"].update(change)
    file = tmp_path / "policy.yaml"
    file.write_text(yaml.safe_dump(raw))
    return file


def test_the_shipped_policy_states_a_limit_for_every_store_and_topic() -> None:
    retention = load_policy(DEFAULT_POLICY_FILE).retention
    assert retention.feed.posts == timedelta(days=730)
    assert retention.feed.feedback == timedelta(days=365)
    assert retention.recognition.revoked_badges == timedelta(days=365)
    assert retention.erasure_markers >= retention.topics["interactions"]
    deleting = {k for k, s in load_topics().items() if s.config["cleanup.policy"] == "delete"}
    assert deleting == set(retention.topics)


def test_topic_retention_comes_from_the_policy() -> None:
    topics = load_topics()
    assert topics["interactions"].config["retention.ms"] == str(400 * 86_400_000)
    assert topics["recognition"].config["retention.ms"] == str(30 * 86_400_000)
    assert "retention.ms" not in topics["engagement"].config  # compacted: erasure by tombstone


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"erasure_markers": "10d"}, "erasure_markers"),
        ({"sweep_interval": "soon"}, "sweep_interval"),
        ({"sweep_interval": "0s"}, "sweep_interval"),
        ({"feed": {"posts": "1d"}}, "retention.feed.feedback"),
        ({"feed": {"posts": "1d", "feedback": "1d", "comments": "1d"}}, "retention.feed.comments"),
    ],
)
def test_a_wrong_switch_is_named_at_start_up(tmp_path: Path, change: dict, named: str) -> None:
    with pytest.raises(SystemExit, match=named):
        load_policy(_write(tmp_path, change))


def test_durations_read_like_the_agreement(tmp_path: Path) -> None:
    policy = load_policy(_write(tmp_path, {"sweep_interval": "90s", "feed": {"posts": "12h", "feedback": "5m"}}))
    assert policy.retention.sweep_interval == timedelta(seconds=90)
    assert policy.retention.feed.posts == timedelta(hours=12)
    assert policy.model_dump(mode="json")["retention"]["feed"] == {"posts": "12h", "feedback": "5m"}
