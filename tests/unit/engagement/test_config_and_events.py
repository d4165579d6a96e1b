"""Start-up validation of scoring.yaml and settings, and the poison checks on incoming records."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.engagement.batch import Record, plan
from services.engagement.config import EngagementWorkerSettings, load_scoring
from tests.unit.engagement.builders import DAY, event, react

NOW_MS = 20_000 * DAY * 1000
SKEW = 3_600_000


def test_the_shipped_scoring_file_is_valid() -> None:
    cfg = load_scoring()
    assert cfg.keep_days == 100
    assert cfg.leaderboards.windows == ["7d", "30d", "100d", "decayed"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("content: {post: -1}", "content.post"),
        ("content: {posts: 1}", "content.posts"),
        ("windows: {days: {7d: 7}}", "at least 100 days"),
        ("leaderboards: {windows: [90d]}", "unknown windows"),
        ("conversation: {pair_cap_per_day: 0}", "pair_cap_per_day"),
        ("content: [", "cannot read"),
    ],
)
def test_invalid_scoring_files_stop_start_up_with_a_clear_message(tmp_path: Path, text: str, message: str) -> None:
    file = tmp_path / "scoring.yaml"
    file.write_text(text)
    with pytest.raises(SystemExit, match=message):
        load_scoring(file)


def test_settings_reject_a_heartbeat_longer_than_a_third_of_the_session(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CATALYST_WORKER_SESSION_TIMEOUT_SECONDS", "6")
    monkeypatch.setenv("CATALYST_WORKER_HEARTBEAT_SECONDS", "3")
    with pytest.raises(ValueError, match="heartbeat"):
        EngagementWorkerSettings()


def _poison(value: bytes | None, key: bytes | None = None) -> str:
    work = plan([Record(0, 0, key, value, 0)], NOW_MS, SKEW)
    assert not work.ops and len(work.dead) == 1, work
    return work.dead[0][1]


def test_valid_records_are_planned() -> None:
    env = react("a", "b", 20_000 * DAY - 5)
    work = plan([Record(0, 0, b"a", env.SerializeToString(), 0)], NOW_MS, SKEW)
    assert not work.dead and set(work.ops) == {"a", "b"}


def test_poison_records_are_rejected_with_a_reason() -> None:
    assert "empty" in _poison(b"")
    assert "empty" in _poison(None)
    assert "undecodable" in _poison(b"\xff\xff\xff")
    wrong = react("a", "b", 20_000 * DAY)
    wrong.type = "catalyst.events.v1.ScoreChanged"
    assert _poison(wrong.SerializeToString()) == "unknown event type 'catalyst.events.v1.ScoreChanged'"
    mismatch = react("a", "b", 20_000 * DAY)
    mismatch.type = "catalyst.events.v1.PostCreated"
    assert _poison(mismatch.SerializeToString()) == "type catalyst.events.v1.PostCreated but payload 'reaction_added'"
    mismatch.ClearField("reaction_added")
    assert _poison(mismatch.SerializeToString()) == "type catalyst.events.v1.PostCreated but payload None"
    assert "post_author_id" in _poison(react("a", "", 20_000 * DAY).SerializeToString())
    assert "key" in _poison(react("a", "b", 20_000 * DAY).SerializeToString(), b"other")
    assert "future" in _poison(react("a", "b", 20_001 * DAY).SerializeToString())
    bad_profile = event("ProfileUpdated", "a", 20_000 * DAY - 5, completeness=1.5)
    assert "completeness" in _poison(bad_profile.SerializeToString())
    no_time = react("a", "b", 20_000 * DAY)
    no_time.ClearField("occurred_at")
    assert "occurred_at" in _poison(no_time.SerializeToString())
    no_id = react("a", "b", 20_000 * DAY - 5)
    no_id.event_id = ""
    assert "event_id" in _poison(no_id.SerializeToString())
    assert "too long" in _poison(react("a" * 129, "b", 20_000 * DAY - 5).SerializeToString())
    assert "control" in _poison(react("a\x00b", "b", 20_000 * DAY - 5).SerializeToString())


def test_a_bad_display_name_is_reported_before_a_key_mismatch() -> None:
    named = event("EmployeeRegistered", "a", 20_000 * DAY - 5, display_name="bad\x07name")
    assert "display_name" in _poison(named.SerializeToString(), b"other")


def test_plan_counts_kinds_and_dead_letters_and_keeps_directory_facts_off_the_clock() -> None:
    values = [
        react("a", "b", 20_000 * DAY - 9).SerializeToString(),
        b"\xff\xff\xff",
        event("EmployeeRegistered", "c", 20_000 * DAY - 1, display_name="C").SerializeToString(),
        react("b", "a", 20_000 * DAY - 7).SerializeToString(),
    ]
    work = plan([Record(0, offset, None, value, 0) for offset, value in enumerate(values)], NOW_MS, SKEW)
    assert work.kinds == {"ReactionAdded": 2, "EmployeeRegistered": 1, "dead_letter": 1}
    assert work.newest_ms == (20_000 * DAY - 7) * 1000
    assert [offset for offset, _ in work.ops["a"][0]] == [0, 3] and work.dead[0][0].offset == 1
