"""The emerging list: on track means every criterion in the band a holder keeps the badge in; the expected date
follows each missing figure's pace over its window, then the confirmation period."""

from __future__ import annotations

import copy
from datetime import timedelta
from pathlib import Path

import pytest

from services.recognition.calibration import Calibration
from services.recognition.emerging import outlook, window_days
from services.recognition.rules import Holding, Rules, Tier, load_rules
from tests.unit.recognition.test_calibration import MONDAY, RULES, calibrate, company, write


def rules_with(tmp_path: Path, profile: bool = False) -> Rules:
    """The calibration tests' Helper (answers: top 10 % to earn, top 25 % to keep) with five days' confirmation."""
    raw = copy.deepcopy(RULES)
    tier = raw["badges"]["helper"]["tiers"]["single"]
    tier["confirm_days"] = 5
    if profile:
        tier["criteria"].append(
            {"metric": "profile_completeness", "grant": 0.8, "keep": 0.6, "format": "percent", "label": "profile"}
        )
    return load_rules(write(tmp_path, raw))


@pytest.fixture
def rules(tmp_path: Path) -> Rules:
    return rules_with(tmp_path)


@pytest.fixture
def calibration(rules: Rules) -> Calibration:
    return calibrate(rules, company([float(n) for n in range(100)]), MONDAY)  # answers: grant 90, keep 75


def test_windows_in_days() -> None:
    assert (window_days("100d"), window_days("12w"), window_days("current"), window_days("all time")) == (
        100,
        84,
        None,
        None,
    )


def test_below_keep_is_not_on_track(rules: Rules, calibration: Calibration) -> None:
    assert not outlook(rules, {"answers_100d": 74, "accepted_answers_100d": 3}, None, MONDAY, calibration).on_track
    assert not outlook(rules, {"answers_100d": 95, "accepted_answers_100d": 0}, None, MONDAY, calibration).on_track


def test_between_keep_and_grant_the_date_follows_the_pace_of_the_window(rules: Rules, calibration: Calibration) -> None:
    seen = outlook(rules, {"answers_100d": 80, "accepted_answers_100d": 1}, None, MONDAY, calibration)
    # 10 answers missing at 80 answers in 100 days: 13 days, then five days' confirmation.
    assert seen.on_track and seen.qualifying_since is None
    assert seen.expected_at == MONDAY + timedelta(days=13 + 5)
    assert seen.expected == (
        "answers in the last 100 days 80 of 90: 13 more days at the pace of the last 100 days, "
        "then the 5-day confirmation"
    )


def test_meeting_every_criterion_the_date_is_the_end_of_the_confirmation(
    rules: Rules, calibration: Calibration
) -> None:
    figures = {"answers_100d": 95, "accepted_answers_100d": 2}
    since = MONDAY - timedelta(days=2)
    confirming = Holding("helper", Tier.SINGLE, qualifying_since=since)
    seen = outlook(rules, figures, confirming, MONDAY, calibration)
    assert seen.on_track and seen.qualifying_since == since and seen.expected_at == since + timedelta(days=5)
    assert outlook(rules, figures, None, MONDAY, calibration).expected_at == MONDAY + timedelta(days=5)


def test_holders_are_not_emerging(rules: Rules, calibration: Calibration) -> None:
    held = Holding("helper", Tier.SINGLE, held=True, grant_seq=1, granted_at=MONDAY)
    figures = {"answers_100d": 95, "accepted_answers_100d": 2}
    assert not outlook(rules, figures, held, MONDAY, calibration).on_track


def test_nobody_is_on_track_before_the_company_is_compared(rules: Rules) -> None:
    figures = {"answers_100d": 95, "accepted_answers_100d": 2}
    assert not outlook(rules, figures, None, MONDAY, None).on_track
    too_few = calibrate(rules, company([float(n) for n in range(5)]), MONDAY)
    assert not outlook(rules, figures, None, MONDAY, too_few).on_track


def test_a_figure_that_does_not_grow_with_time_gives_no_date(tmp_path: Path) -> None:
    rules = rules_with(tmp_path, profile=True)
    calibration = calibrate(rules, company([float(n) for n in range(100)]), MONDAY)
    figures = {"answers_100d": 95, "accepted_answers_100d": 2, "profile_completeness": 0.67}
    seen = outlook(rules, figures, None, MONDAY, calibration)
    assert seen.on_track and seen.expected_at is None
    assert seen.expected == "no date: profile 67% of 80% does not grow at a pace"


def test_with_all_but_one_the_date_waits_only_for_the_soonest_strengths_still_needed(tmp_path: Path) -> None:
    raw = copy.deepcopy(RULES)
    tier = raw["badges"]["helper"]["tiers"]["single"]
    tier["confirm_days"] = 5
    tier["criteria"] += [
        {"metric": "comments_given_30d", "grant": 10, "keep": 5, "label": "comments"},
        {"metric": "score.100d.innovation", "grant": 6, "keep": 2, "label": "innovation points"},
    ]
    tier["at_least"] = {
        "count": 2,
        "of": ["answers_100d", "comments_given_30d", "score.100d.innovation"],
        "label": "strengths",
    }
    rules = load_rules(write(tmp_path, raw))
    calibration = calibrate(rules, company([float(n) for n in range(100)]), MONDAY)  # answers: grant 90, keep 75
    figures = {"answers_100d": 95, "accepted_answers_100d": 1, "comments_given_30d": 6, "score.100d.innovation": 3}
    # Answers count; of comments (20 days to 10 at 6 in 30 days) and innovation (100 days) one more is needed.
    seen = outlook(rules, figures, None, MONDAY, calibration)
    assert seen.expected_at == MONDAY + timedelta(days=20 + 5)
    assert seen.expected.startswith("comments 6 of 10: 20 more days")
    # Two of the three are needed when none counts yet: answers (13 days) and comments (20 days).
    assert outlook(rules, {**figures, "answers_100d": 80}, None, MONDAY, calibration).expected_at == (
        MONDAY + timedelta(days=20 + 5)
    )
    met = outlook(rules, {**figures, "comments_given_30d": 10}, None, MONDAY, calibration)
    assert met.expected_at == MONDAY + timedelta(days=5) and met.expected.startswith("meets the criteria")
