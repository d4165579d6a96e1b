"""Start-up checks of the scoring file and the process settings, and what the worker's `plan` makes of each
incoming record: merges for valid ones, a dead letter with a reason a person understands for the others."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from services.engagement.model.config import DEFAULT_SCORING_FILE, load_model
from services.engagement.publisher.settings import PublisherSettings
from services.engagement.worker.handler import Record, plan, reason_label
from services.engagement.worker.settings import EngagementWorkerSettings
from tests.unit.engagement.builders import DAY, event, post, react

NOW_MS = 20_000 * DAY * 1000
SKEW = 3_600_000


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (("windows", "days", "7d"), 0, "between 1 and 400"),
        (("windows", "days", "decayed"), 30, "name of the decayed total"),
        (("leaderboards", "windows"), ["90d"], "unknown windows"),
        (("caps", "given"), 0, "at least 1"),
        (("components", "content", 0, "closed", "most"), {"30d": 4}, "closed.most gives days for exactly the windows"),
        (("components", "content", 0, "closed", "most", "30d"), 0, "every window's days are positive"),
        (("limits", "max_future_skew_hours"), -1, "limits.max_future_skew_hours"),
        (("surprise",), 1, "surprise"),
    ],
)
def test_an_invalid_scoring_file_names_the_key_at_fault(
    tmp_path: Path, path: tuple[str | int, ...], value: object, message: str
) -> None:
    model = yaml.safe_load(DEFAULT_SCORING_FILE.read_text())
    parent = model
    for key in path[:-1]:
        parent = parent[key]
    parent[path[-1]] = value
    file = tmp_path / "scoring.yaml"
    file.write_text(yaml.safe_dump(model, sort_keys=False))
    with pytest.raises(SystemExit, match=message):
        load_model(file)


def test_an_unreadable_scoring_file_says_so(tmp_path: Path) -> None:
    broken = tmp_path / "scoring.yaml"
    broken.write_text("windows: [")
    with pytest.raises(SystemExit, match="cannot read scoring config"):
        load_model(broken)
    with pytest.raises(SystemExit, match="cannot read scoring config"):
        load_model(tmp_path / "missing.yaml")


def test_settings_reject_a_heartbeat_longer_than_a_third_of_the_session(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CATALYST_WORKER_SESSION_TIMEOUT_SECONDS", "6")
    monkeypatch.setenv("CATALYST_WORKER_HEARTBEAT_SECONDS", "3")
    with pytest.raises(ValueError, match="heartbeat"):
        EngagementWorkerSettings()


def test_worker_and_publisher_read_the_same_scoring_file_and_their_own_ports(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CATALYST_SCORING_FILE", "/etc/catalyst/scoring.yaml")
    monkeypatch.setenv("CATALYST_PUBLISHER_INTERVAL_SECONDS", "0.2")
    worker, publisher = EngagementWorkerSettings(), PublisherSettings()
    assert worker.scoring_file == publisher.scoring_file == Path("/etc/catalyst/scoring.yaml")
    assert (worker.worker_metrics_port, publisher.publisher_metrics_port) == (9103, 9106)
    assert publisher.publisher_interval_seconds == 0.2


def _poison(value: bytes | None, key: bytes | None = None) -> str:
    work = plan([Record(0, 0, key, value, 0)], NOW_MS, SKEW)
    assert not work.writes and len(work.dead) == 1, work
    return work.dead[0][1]


def test_valid_records_are_planned() -> None:
    env = react("a", "b", 20_000 * DAY - 5)
    work = plan([Record(0, 0, b"a", env.SerializeToString(), 0)], NOW_MS, SKEW)
    assert not work.dead and set(work.writes) == {"a", "b"}


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


def test_dead_letter_reasons_fall_into_a_few_metric_labels() -> None:
    assert reason_label(_poison(b"")) == reason_label(_poison(b"\xff\xff\xff")) == "undecodable"
    unknown = react("a", "b", 20_000 * DAY)
    unknown.type = "catalyst.events.v1.Unheard"
    assert reason_label(_poison(unknown.SerializeToString())) == "unknown_type"
    assert reason_label(_poison(react("a", "", 20_000 * DAY).SerializeToString())) == "invalid"


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
    assert work.registered == {"c"}
    ((partition, ops),) = work.writes["a"]
    assert partition == 0 and sorted({offset for offset, _ in ops}) == [0, 3] and work.dead[0][0].offset == 1


def test_an_erasure_takes_what_came_before_it_in_the_batch_with_it() -> None:
    t = 20_000 * DAY - 9
    values = [post("a", t), react("b", "a", t + 1), event("EmployeeForgotten", "a", t + 2), post("a", t + 3)]
    work = plan([Record(1, n, None, env.SerializeToString(), 0) for n, env in enumerate(values)], NOW_MS, SKEW)
    assert work.forget == ["a"]
    assert [offset for offset, _ in work.writes["a"][0][1]] == [3]  # refused by the store: the employee is gone
    assert [offset for offset, _ in work.writes["b"][0][1]] == [1]
