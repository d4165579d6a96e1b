"""Calibration to the company: percentile thresholds with floors from a day's company distribution, chosen per
period, with hysteresis."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from services.engagement.model.config import Distribution as DistributionRule
from services.engagement.model.distribution import distribution
from services.recognition.calibration import Calibration, day_of, period_start, proposals, source_day, thresholds
from services.recognition.rules import Action, Holding, Rules, RulesError, Tier, evaluate, load_rules, progress

MONDAY = datetime(2026, 8, 3, 9, 0, tzinfo=UTC)

RULES = {
    "version": 1,
    "coverage": {"badge": "helper"},
    "calibration": {"period_days": 7},
    "badges": {
        "helper": {
            "name": "Helper",
            "description": "Answers questions.",
            "tiers": {
                "single": {
                    "grace_days": 14,
                    "criteria": [
                        {
                            "metric": "answers_100d",
                            "grant": 3,
                            "keep": 2,
                            "percentile": {"grant": 90, "keep": 75},
                            "label": "answers in the last 100 days",
                        },
                        {"metric": "accepted_answers_100d", "grant": 1, "keep": 1, "label": "accepted answers"},
                    ],
                }
            },
        }
    },
}


def write(tmp_path: Path, raw: dict) -> Path:
    path = tmp_path / "badges.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


@pytest.fixture
def rules(tmp_path: Path) -> Rules:
    return load_rules(write(tmp_path, RULES))


SPREAD = DistributionRule(active_signal="active_days_30d", active_min=1, min_population=10, metrics=["answers_100d"])


def company(answers: list[float], active: float = 5) -> list[dict[str, float]]:
    return [{"answers_100d": a, "active_days_30d": active} for a in answers]


def calibrate(rules: Rules, everyone: list[dict[str, float]], at: datetime) -> Calibration:
    """The calibration of `at`'s period from the company's distribution of the day before."""
    return Calibration.of(rules, distribution(day_of(at) - 1, everyone, SPREAD), at)


def test_the_threshold_is_what_the_top_share_of_active_colleagues_reach(rules: Rules) -> None:
    everyone = company([float(n) for n in range(100)]) + company([500.0] * 50, active=0)
    calibration = calibrate(rules, everyone, MONDAY)
    assert calibration.population == 100  # the inactive do not count
    criterion = rules.badges["helper"].tiers[Tier.SINGLE].criteria[0]
    assert thresholds(criterion, calibration) == (90.0, 75.0)


def test_floors_hold_when_the_company_is_quiet(rules: Rules) -> None:
    calibration = calibrate(rules, company([0.0] * 95 + [1.0] * 5), MONDAY)
    criterion = rules.badges["helper"].tiers[Tier.SINGLE].criteria[0]
    assert thresholds(criterion, calibration) == (3.0, 2.0)


def test_too_few_active_colleagues_compare_nobody(rules: Rules) -> None:
    calibration = calibrate(rules, company([50.0] * 9), MONDAY)
    assert calibration.quantiles == {}
    criterion = rules.badges["helper"].tiers[Tier.SINGLE].criteria[0]
    grant, keep = thresholds(criterion, calibration)
    assert grant == float("inf") and keep == 2.0
    assert evaluate(rules, {"answers_100d": 50, "accepted_answers_100d": 5}, {}, MONDAY, calibration=calibration) == []


def test_an_empty_intranet_badges_nobody(rules: Rules) -> None:
    calibration = calibrate(rules, company([0.0] * 100), MONDAY)
    assert evaluate(rules, {"answers_100d": 2, "accepted_answers_100d": 1}, {}, MONDAY, calibration=calibration) == []


def test_a_period_takes_the_distribution_of_the_day_before_it_began(rules: Rules) -> None:
    monday = day_of(MONDAY)
    assert period_start(rules, MONDAY + timedelta(days=2)) == datetime(2026, 8, 3, tzinfo=UTC)
    kept = [monday - 8, monday - 1, monday + 1, monday + 5]  # another partition may be days ahead
    assert source_day(rules, kept, MONDAY + timedelta(days=3)) == monday - 1
    assert source_day(rules, kept, MONDAY + timedelta(days=6)) == monday - 1


def test_a_historys_first_period_takes_the_newest_day_before(rules: Rules) -> None:
    monday = day_of(MONDAY)
    kept = [monday + 1, monday + 2, monday + 5]  # the history began on a Tuesday
    assert source_day(rules, kept, MONDAY) is None
    assert source_day(rules, kept, MONDAY + timedelta(days=2)) == monday + 1
    assert source_day(rules, kept, MONDAY + timedelta(days=4)) == monday + 2


def test_hysteresis_holds_when_the_distribution_moves(rules: Rules) -> None:
    quiet = calibrate(rules, company([float(n) for n in range(100)]), MONDAY)
    figures = {"answers_100d": 92.0, "accepted_answers_100d": 2.0}
    (grant,) = evaluate(rules, figures, {}, MONDAY, calibration=quiet)
    assert grant.action is Action.GRANT
    held = {("helper", Tier.SINGLE): grant.holding}
    # The company gets busier: the person is no longer in the top 10 % but still in the top 25 %.
    busier = calibrate(rules, company([n * 1.15 for n in range(100)]), MONDAY + timedelta(days=7))
    assert thresholds(rules.badges["helper"].tiers[Tier.SINGLE].criteria[0], busier)[0] > 92
    assert evaluate(rules, figures, held, MONDAY + timedelta(days=7), calibration=busier) == []
    # Much busier: below the keep percentile, the tier goes at risk (and the grace period runs as before).
    busiest = calibrate(rules, company([n * 2.0 for n in range(100)]), MONDAY + timedelta(days=14))
    (risk,) = evaluate(rules, figures, held, MONDAY + timedelta(days=14), calibration=busiest)
    assert risk.action is Action.AT_RISK
    assert "what the 25% of active colleagues with the most answers in the last 100 days reach" in (
        risk.evidence[0].description
    )


def test_evidence_and_progress_name_a_share_of_colleagues_never_a_rank(rules: Rules) -> None:
    calibration = calibrate(rules, company([float(n) for n in range(100)]), MONDAY)
    (grant,) = evaluate(rules, {"answers_100d": 95, "accepted_answers_100d": 2}, {}, MONDAY, calibration=calibration)
    text = grant.evidence[0].description
    assert text == (
        "answers in the last 100 days: 95 (threshold 90: what the 10% of active colleagues with the most "
        "answers in the last 100 days reach, at least 3)"
    )
    (view,) = progress(rules, {"answers_100d": 40, "accepted_answers_100d": 0}, {}, calibration=calibration)
    assert view.missing[0].description.startswith("50 more answers in the last 100 days (40 of 90; what the 10%")
    (before,) = progress(rules, {"answers_100d": 40}, {}, calibration=None)
    assert "once enough of them are active" in before.missing[0].description


def test_a_calibration_survives_json(rules: Rules) -> None:
    calibration = calibrate(rules, company([float(n) for n in range(40)]), MONDAY)
    assert Calibration.from_json(calibration.to_json()) == calibration


def test_ranked_metrics_need_a_published_distribution(tmp_path: Path) -> None:
    raw = yaml.safe_load(yaml.safe_dump(RULES))
    raw["badges"]["helper"]["tiers"]["single"]["criteria"][1]["percentile"] = {"grant": 80, "keep": 70}
    with pytest.raises(RulesError, match="accepted_answers_100d.*add it to distribution.metrics"):
        load_rules(write(tmp_path, raw))


def test_percentiles_need_a_calibration_section(tmp_path: Path) -> None:
    raw = {k: v for k, v in RULES.items() if k != "calibration"}
    with pytest.raises(RulesError, match="needs a calibration section"):
        load_rules(write(tmp_path, raw))


def test_percentile_keep_may_not_exceed_grant(tmp_path: Path) -> None:
    raw = yaml.safe_load(yaml.safe_dump(RULES))
    raw["badges"]["helper"]["tiers"]["single"]["criteria"][0]["percentile"] = {"grant": 80, "keep": 90}
    with pytest.raises(RulesError, match="percentile keep"):
        load_rules(write(tmp_path, raw))


def test_held_tiers_keep_their_floor_without_a_calibration(rules: Rules) -> None:
    held = {("helper", Tier.SINGLE): Holding("helper", Tier.SINGLE, held=True, grant_seq=1, granted_at=MONDAY)}
    assert evaluate(rules, {"answers_100d": 2, "accepted_answers_100d": 1}, held, MONDAY) == []


def test_proposals_count_who_reaches_a_threshold_only_in_groups_of_the_minimum_size(rules: Rules) -> None:
    everyone = company([float(n) for n in range(100)])
    in_force = calibrate(rules, everyone, MONDAY)
    busier = company([float(n) + 4 for n in range(100)])
    proposed = calibrate(rules, busier, MONDAY + timedelta(days=7))
    (answers,) = proposals(rules, proposed, in_force, busier, 5)
    assert (answers.badge, answers.tier, answers.criterion.metric) == ("helper", "single", "answers_100d")
    assert (answers.in_force.grant, answers.in_force.keep) == (90.0, 75.0)
    assert (answers.proposed.grant, answers.proposed.keep) == (94.0, 79.0)
    assert answers.proposed.meeting == 10 and answers.in_force.meeting == 14
    (few,) = proposals(rules, proposed, in_force, busier, 11)  # 10 people reach it: fewer than 11 are not told
    assert few.proposed.meeting is None and few.in_force.meeting == 14
    (uncalibrated,) = proposals(rules, proposed, None, busier, 5)
    assert uncalibrated.in_force.grant == float("inf") and uncalibrated.in_force.meeting == 0
