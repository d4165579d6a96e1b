"""Pure badge rules: validation, thresholds, hysteresis, grace periods, progress in numbers and words."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from catalyst.events.v1 import scores_pb2

from services.engagement.model.config import DEFAULT_SCORING_FILE, load_model
from services.engagement.model.figures import figures, flatten
from services.engagement.model.state import State
from services.recognition.config import DEFAULT_RULES
from services.recognition.rules import (
    Action,
    Catalogue,
    Holding,
    Rules,
    RulesError,
    Tier,
    TierRule,
    default_window,
    evaluate,
    load_rules,
    progress,
    revocation_due,
)

T0 = datetime(2025, 3, 3, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def rules() -> Rules:
    """The shipped rules without their confirmation periods: grants, hysteresis and grace at one evaluation each
    (the confirmation period has tests of its own below)."""
    return at_once(load_rules(DEFAULT_RULES))


def at_once(rules: Rules) -> Rules:
    """Without confirmation periods and percentiles (floors only): calibration has tests of its own
    (test_calibration.py)."""

    def floors(r: TierRule) -> TierRule:
        criteria = tuple(c.model_copy(update={"percentile": None}) for c in r.criteria)
        return r.model_copy(update={"confirm_days": 0, "criteria": criteria})

    badges = {
        badge_id: badge.model_copy(update={"tiers": {t: floors(r) for t, r in badge.tiers.items()}})
        for badge_id, badge in rules.badges.items()
    }
    return rules.model_copy(update={"badges": badges})


def ambassador_figures(rules: Rules, level: str) -> dict[str, float]:
    """Figures exactly at the grant or keep threshold of every ambassador criterion."""
    return {c.metric: getattr(c, level) for c in rules.badges["intranet_ambassador"].tiers[Tier.SINGLE].criteria}


def top_figures(rules: Rules, badge: str) -> dict[str, float]:
    """Figures at the highest grant threshold of every criterion of every tier of a badge."""
    figures: dict[str, float] = {}
    for tier in rules.badges[badge].tiers.values():
        for c in tier.criteria:
            figures[c.metric] = max(figures.get(c.metric, 0.0), c.grant)
    return figures


def tier_figures(rules: Rules, badge: str, tier: Tier) -> dict[str, float]:
    return {c.metric: c.grant for c in rules.badges[badge].tiers[tier].criteria}


def apply(holdings: dict, decisions: list) -> dict:
    out = dict(holdings)
    for d in decisions:
        out[(d.badge, d.tier)] = d.holding
    return out


def only(decisions: list, badge: str) -> list:
    return [d for d in decisions if d.badge == badge]


# ---------------------------------------------------------------- the file


def test_shipped_rules_file_is_valid_and_has_the_required_badges(rules: Rules) -> None:
    assert {"intranet_ambassador", "creator", "connector", "helper", "innovator", "pilot_pioneer"} <= set(rules.badges)
    assert rules.badges["intranet_ambassador"].invitation
    for facet in ("creator", "connector", "helper", "innovator"):
        assert rules.badges[facet].ordered_tiers() == [Tier.BRONZE, Tier.SILVER, Tier.GOLD]
    for badge in rules.badges.values():
        for tier in badge.tiers.values():
            assert all(c.keep <= c.grant for c in tier.criteria)


def write(tmp_path: Path, data: dict) -> Path:
    path = tmp_path / "badges.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def minimal(**criterion: object) -> dict:
    base = {"metric": "posts_30d", "grant": 3, "keep": 2, "label": "posts in the last 30 days"}
    base.update(criterion)
    return {
        "version": 1,
        "coverage": {"badge": "creator"},
        "badges": {
            "creator": {
                "name": "Creator",
                "description": "d",
                "tiers": {"bronze": {"grace_days": 7, "criteria": [base]}},
            }
        },
    }


@pytest.mark.parametrize(
    ("criterion", "message"),
    [
        ({"keep": 5}, "keep (5) must not exceed grant (3)"),
        ({"metric": "postz_30d"}, "unknown signal 'postz_30d'"),
        ({"metric": "score.31d.total"}, "score.<window>.<component>"),
        ({"grant": 0, "keep": 0}, "greater than 0"),
        ({"colour": "red"}, "Extra inputs are not permitted"),
    ],
)
def test_invalid_criteria_are_rejected_with_their_location(tmp_path: Path, criterion: dict, message: str) -> None:
    with pytest.raises(RulesError) as info:
        load_rules(write(tmp_path, minimal(**criterion)))
    assert message in str(info.value)
    assert "badges.creator.tiers.bronze.criteria.0" in str(info.value)


def test_tiers_must_not_have_gaps_or_lower_thresholds(tmp_path: Path) -> None:
    data = minimal()
    data["badges"]["creator"]["tiers"]["gold"] = data["badges"]["creator"]["tiers"]["bronze"]
    with pytest.raises(RulesError, match="without gaps"):
        load_rules(write(tmp_path, data))
    data = minimal()
    lower = {"metric": "posts_30d", "grant": 2, "keep": 1, "label": "posts in the last 30 days"}
    data["badges"]["creator"]["tiers"]["silver"] = {"grace_days": 7, "criteria": [lower]}
    with pytest.raises(RulesError, match="silver needs at least the bronze grant threshold"):
        load_rules(write(tmp_path, data))


def test_coverage_must_name_a_badge_and_unreadable_files_are_reported(tmp_path: Path) -> None:
    data = minimal()
    data["coverage"]["badge"] = "nope"
    with pytest.raises(RulesError, match="coverage.badge 'nope'"):
        load_rules(write(tmp_path, data))
    with pytest.raises(RulesError, match="cannot read badge rules"):
        load_rules(tmp_path / "missing.yaml")


def test_windows_are_read_from_metric_names() -> None:
    assert default_window("posts_30d") == "30d"
    assert default_window("active_weeks_12w") == "12w"
    assert default_window("score.decayed.total") == "decayed"
    assert default_window("profile_completeness") == "current"


def test_figures_flatten_signals_and_window_scores() -> None:
    flat = flatten({"posts_30d": 4}, {"30d": {"total": 12.5}})
    assert flat == {"posts_30d": 4.0, "score.30d.total": 12.5}


# ---------------------------------------------------------------- granting


def test_reaching_every_grant_threshold_grants_with_evidence(rules: Rules) -> None:
    figures = ambassador_figures(rules, "grant")
    decisions = only(evaluate(rules, figures, {}, T0), "intranet_ambassador")
    assert [d.action for d in decisions] == [Action.GRANT]
    holding = decisions[0].holding
    assert holding.held and holding.grant_seq == 1 and holding.granted_at == T0 and holding.status == "invited"
    evidence = {e.metric: e for e in holding.evidence}
    assert set(evidence) == set(figures)
    weeks = next(
        c for c in rules.badges["intranet_ambassador"].tiers[Tier.SINGLE].criteria if c.metric == "active_weeks_12w"
    )
    assert evidence["active_weeks_12w"].value == evidence["active_weeks_12w"].threshold == weeks.grant
    assert evidence["active_weeks_12w"].window == "12w"
    assert evidence["profile_completeness"].description == "profile completeness: 80% (threshold 80%)"


def test_one_criterion_short_grants_nothing(rules: Rules) -> None:
    figures = ambassador_figures(rules, "grant")
    figures["active_weeks_12w"] -= 1
    assert only(evaluate(rules, figures, {}, T0), "intranet_ambassador") == []


def ambassador_rule(rules: Rules) -> TierRule:
    return rules.badges["intranet_ambassador"].tiers[Tier.SINGLE]


def test_the_ambassador_needs_all_but_one_strength_and_that_one_at_keep(rules: Rules) -> None:
    """A quiet ambassador who tries one feature less than the top colleagues is still an ambassador; a
    specialist strong in two or three strengths is not, nor is anyone far below in the one they miss."""
    group = ambassador_rule(rules).at_least
    assert group is not None and group.count == len(group.of) - 1
    keep = ambassador_figures(rules, "keep")
    for missed in group.of:
        figures = {**ambassador_figures(rules, "grant"), missed: keep[missed]}
        (granted,) = only(evaluate(rules, figures, {}, T0), "intranet_ambassador")
        assert granted.action is Action.GRANT
        evidence = {e.metric: e.description for e in granted.evidence}
        assert (
            "but 4 of the 5 strengths (colleagues, comments, answers, accepted answers, innovation) suffice"
            in (evidence[missed])
        )
        assert all("suffice" not in text for metric, text in evidence.items() if metric != missed)
        below_keep = {**figures, missed: keep[missed] - 0.5}
        assert only(evaluate(rules, below_keep, {}, T0), "intranet_ambassador") == []
    first, second = group.of[:2]
    two_short = {**ambassador_figures(rules, "grant"), first: keep[first], second: keep[second]}
    assert only(evaluate(rules, two_short, {}, T0), "intranet_ambassador") == []


def test_progress_says_how_many_of_the_strengths_it_needs(rules: Rules) -> None:
    keep = ambassador_figures(rules, "keep")
    one_short = {**ambassador_figures(rules, "grant"), "score.100d.innovation": keep["score.100d.innovation"]}
    view = next(v for v in progress(rules, one_short, {}) if v.badge == "intranet_ambassador")
    assert view.missing == () and "granted with your next score update" in view.summary
    spared = next(r for r in view.met if r.metric == "score.100d.innovation")
    assert spared.description == (
        "1 innovation points in the last 100 days (below 2, but 4 of the 5 strengths (colleagues, comments, answers, "
        "accepted answers, innovation) suffice and this one is at least at 1)"
    )
    two_short = {**one_short, "answers_100d": keep["answers_100d"]}
    view = next(v for v in progress(rules, two_short, {}) if v.badge == "intranet_ambassador")
    assert [r.metric for r in view.missing] == ["answers_100d", "score.100d.innovation"]
    assert view.summary.startswith(
        "Intranet Ambassador: 5 of 7 requirements met. It needs 4 of the 5 strengths (colleagues, comments, answers, "
        "accepted answers, innovation) (meets 3), and the others at least at the level that keeps the badge. Still "
        "missing: 2 more answers"
    )
    below_keep = {**one_short, "score.100d.innovation": 0}
    view = next(v for v in progress(rules, below_keep, {}) if v.badge == "intranet_ambassador")
    (missing,) = view.missing
    assert missing.required == keep["score.100d.innovation"]
    assert missing.description.startswith("innovation points in the last 100 days of at least 1 (now 0;")


def grouped(count: int, of: list[str]) -> dict:
    data = minimal()
    bronze = data["badges"]["creator"]["tiers"]["bronze"]
    bronze["criteria"].append({"metric": "comments_given_30d", "grant": 8, "keep": 4, "label": "comments"})
    bronze["at_least"] = {"count": count, "of": of, "label": "strengths"}
    return data


@pytest.mark.parametrize(
    ("count", "of", "message"),
    [
        (2, ["posts_30d", "comments_given_30d"], "at_least.count (2) must be below the number of its criteria (2)"),
        (1, ["posts_30d", "answers_100d"], "at_least names metrics that are not criteria of the tier"),
        (1, ["posts_30d", "posts_30d"], "at_least names a criterion twice"),
    ],
)
def test_invalid_groups_are_rejected(tmp_path: Path, count: int, of: list[str], message: str) -> None:
    with pytest.raises(RulesError) as info:
        load_rules(write(tmp_path, grouped(count, of)))
    assert message in str(info.value)
    assert "badges.creator.tiers.bronze" in str(info.value)


def test_opted_out_employees_get_no_new_badges(rules: Rules) -> None:
    assert evaluate(rules, ambassador_figures(rules, "grant"), {}, T0, may_grant=False) == []


def test_a_held_tier_is_not_granted_again(rules: Rules) -> None:
    figures = ambassador_figures(rules, "grant")
    holdings = apply({}, evaluate(rules, figures, {}, T0))
    assert evaluate(rules, figures, holdings, T0 + timedelta(days=1)) == []


def test_qualifying_for_gold_grants_every_tier_once(rules: Rules) -> None:
    decisions = only(evaluate(rules, top_figures(rules, "creator"), {}, T0), "creator")
    assert [(d.action, d.tier) for d in decisions] == [
        (Action.GRANT, Tier.BRONZE),
        (Action.GRANT, Tier.SILVER),
        (Action.GRANT, Tier.GOLD),
    ]


# ---------------------------------------------------------------- hysteresis and grace


def held_ambassador(rules: Rules) -> dict:
    return apply({}, evaluate(rules, ambassador_figures(rules, "grant"), {}, T0))


def test_hovering_between_keep_and_grant_changes_nothing(rules: Rules) -> None:
    holdings = held_ambassador(rules)
    grant, keep = ambassador_figures(rules, "grant"), ambassador_figures(rules, "keep")
    for day in range(1, 200):
        figures = keep if day % 2 else {m: (grant[m] + keep[m]) / 2 for m in grant}
        assert only(evaluate(rules, figures, holdings, T0 + timedelta(days=day)), "intranet_ambassador") == []


def test_dropping_below_keep_puts_at_risk_then_recovering_clears_it(rules: Rules) -> None:
    holdings = held_ambassador(rules)
    low = ambassador_figures(rules, "keep")
    low["active_weeks_12w"] = 1
    t1 = T0 + timedelta(days=10)
    decisions = only(evaluate(rules, low, holdings, t1), "intranet_ambassador")
    assert [d.action for d in decisions] == [Action.AT_RISK]
    assert decisions[0].holding.at_risk_since == t1
    assert [e.metric for e in decisions[0].evidence] == ["active_weeks_12w"]
    holdings = apply(holdings, decisions)
    assert only(evaluate(rules, low, holdings, t1 + timedelta(days=5)), "intranet_ambassador") == []
    recovered = only(
        evaluate(rules, ambassador_figures(rules, "keep"), holdings, t1 + timedelta(days=6)), "intranet_ambassador"
    )
    assert [d.action for d in recovered] == [Action.RECOVER]
    assert recovered[0].holding.at_risk_since is None and recovered[0].holding.held


def test_below_keep_for_longer_than_the_grace_period_revokes_at_its_end(rules: Rules) -> None:
    grace = rules.badges["intranet_ambassador"].tiers[Tier.SINGLE].grace_days
    answers_keep = ambassador_figures(rules, "keep")["answers_100d"]
    holdings = held_ambassador(rules)
    low = {**ambassador_figures(rules, "keep"), "answers_100d": 1}
    t1 = T0 + timedelta(days=3)
    holdings = apply(holdings, evaluate(rules, low, holdings, t1))
    assert revocation_due(rules, holdings[("intranet_ambassador", Tier.SINGLE)]) == t1 + timedelta(days=grace)
    the_day_before = t1 + timedelta(days=grace - 1, hours=23 - t1.hour)
    assert only(evaluate(rules, low, holdings, the_day_before), "intranet_ambassador") == []
    that_morning = t1 + timedelta(days=grace, hours=-t1.hour)  # grace counts calendar days, not hours
    assert [d.action for d in only(evaluate(rules, low, holdings, that_morning), "intranet_ambassador")] == [
        Action.REVOKE
    ]
    late = t1 + timedelta(days=grace + 9)
    decisions = only(evaluate(rules, low, holdings, late), "intranet_ambassador")
    assert [d.action for d in decisions] == [Action.REVOKE]
    revoked = decisions[0].holding
    assert not revoked.held and revoked.revoked_at == t1 + timedelta(days=grace)
    assert f"{grace}-day grace period" in revoked.revoke_reason
    assert f"answers to colleagues' questions in the last 100 days: 1 (threshold {answers_keep:g})" in (
        revoked.revoke_reason
    )


def test_a_regrant_after_revocation_is_a_new_grant(rules: Rules) -> None:
    holding = Holding("intranet_ambassador", Tier.SINGLE, held=False, grant_seq=1, revoked_at=T0)
    decisions = only(
        evaluate(rules, ambassador_figures(rules, "grant"), {(holding.badge, holding.tier): holding}, T0),
        "intranet_ambassador",
    )
    assert decisions[0].holding.grant_seq == 2 and decisions[0].holding.revoked_at is None


def test_zero_grace_revokes_immediately(rules: Rules) -> None:
    holding = Holding("pilot_pioneer", Tier.SINGLE, held=True, grant_seq=1, granted_at=T0)
    decisions = only(
        evaluate(rules, {"pilot_activities": 1}, {("pilot_pioneer", Tier.SINGLE): holding}, T0), "pilot_pioneer"
    )
    assert [d.action for d in decisions] == [Action.REVOKE]


def test_evaluation_is_deterministic(rules: Rules) -> None:
    figures = {**ambassador_figures(rules, "grant"), "posts_30d": 9, "active_weeks_12w": 9}
    assert evaluate(rules, figures, {}, T0) == evaluate(rules, dict(figures), {}, T0)


# ---------------------------------------------------------------- progress


def test_progress_agrees_with_the_rules_in_numbers_and_words(rules: Rules) -> None:
    figures = {**tier_figures(rules, "creator", Tier.BRONZE), "active_weeks_12w": 3, "profile_completeness": 0.5}
    figures["posts_30d"] = 5
    holdings = apply({}, evaluate(rules, figures, {}, T0))
    views = {v.badge: v for v in progress(rules, figures, holdings)}
    creator = views["creator"]
    assert creator.next_tier is Tier.SILVER
    silver = {c.metric: c for c in rules.badges["creator"].tiers[Tier.SILVER].criteria}
    missing = {r.metric: r for r in creator.missing}
    assert missing["posts_30d"].required == silver["posts_30d"].grant and missing["posts_30d"].current == 5
    assert missing["posts_30d"].description == "3 more posts in the last 30 days (5 of 8)"
    assert missing["active_weeks_12w"].description == "3 more weeks with own activity in the last 12 weeks (3 of 6)"
    met = len(silver) - 2
    assert creator.summary.startswith(
        f"Creator silver: {met} of {len(silver)} requirements met. Still missing: 3 more posts"
    )
    ambassador = views["intranet_ambassador"]
    assert ambassador.next_tier is Tier.SINGLE
    completeness = next(r for r in ambassador.missing if r.metric == "profile_completeness")
    assert completeness.description == "profile completeness of 80% (now 50%)"


def test_progress_reports_met_requirements_and_complete_badges(rules: Rules) -> None:
    gold = top_figures(rules, "creator")
    holdings = apply({}, evaluate(rules, gold, {}, T0))
    views = {v.badge: v for v in progress(rules, gold, holdings)}
    assert views["creator"].next_tier is None and views["creator"].summary == "You hold every tier of Creator."
    connector_ready = tier_figures(rules, "connector", Tier.BRONZE)
    view = next(v for v in progress(rules, connector_ready, {}) if v.badge == "connector")
    assert view.missing == () and len(view.met) == len(connector_ready)
    first = rules.badges["connector"].tiers[Tier.BRONZE].criteria[0]
    assert view.met[0].description == f"{first.grant:g} {first.label} (needs {first.grant:g})"
    assert "granted with your next score update" in view.summary
    opted_out = next(v for v in progress(rules, connector_ready, {}, may_grant=False) if v.badge == "connector")
    assert "opted out of recognition" in opted_out.summary


def test_at_risk_holding_reports_its_due_date(rules: Rules) -> None:
    holding = Holding("creator", Tier.BRONZE, held=True, grant_seq=1, granted_at=T0)
    assert revocation_due(rules, holding) is None
    due = revocation_due(rules, replace(holding, at_risk_since=T0))
    assert due == T0 + timedelta(days=rules.badges["creator"].tiers[Tier.BRONZE].grace_days)


def test_the_catalogue_is_what_engagement_publishes() -> None:
    model = load_model()
    catalogue = Catalogue.of(model)
    published = figures(State(), 0, model)
    for metric in flatten(published.signals, published.windows):
        assert catalogue.check(metric) == metric
    assert {f.name for f in scores_pb2.ComponentScores.DESCRIPTOR.fields} == set(published.windows["30d"])
    with pytest.raises(ValueError, match="unknown signal"):
        catalogue.check("no_such_signal_30d")


def test_rules_are_checked_against_the_scoring_file_they_are_given(tmp_path: Path) -> None:
    assert load_rules(write(tmp_path, minimal(metric="questions_asked_30d")))
    scoring = yaml.safe_load(DEFAULT_SCORING_FILE.read_text())
    scoring["signals"]["posts_7d"] = {"sum": "posts", "days": 7}
    del scoring["windows"]["days"]["7d"]
    del scoring["components"]["content"][0]["closed"]["most"]["7d"]  # one anchor: every term's closed groups
    scoring["leaderboards"]["windows"] = [w for w in scoring["leaderboards"]["windows"] if w != "7d"]
    changed = tmp_path / "scoring.yaml"
    changed.write_text(yaml.safe_dump(scoring))
    rules = write(tmp_path, minimal(metric="posts_7d"))
    with pytest.raises(RulesError, match="unknown signal 'posts_7d'"):
        load_rules(rules)
    assert load_rules(rules, changed).badges["creator"].tiers[Tier.BRONZE].criteria[0].metric == "posts_7d"
    assert load_rules(write(tmp_path, minimal(metric="score.7d.total")))
    with pytest.raises(RulesError, match="score.<window>.<component>"):
        load_rules(write(tmp_path, minimal(metric="score.7d.total")), changed)


def confirming(tmp_path: Path, days: int) -> Rules:
    data = minimal()
    data["badges"]["creator"]["tiers"]["bronze"]["confirm_days"] = days
    return load_rules(write(tmp_path, data))


def test_the_shipped_badges_confirm_a_grant_except_pilot_pioneer() -> None:
    """Facets wait a week, the calibrated ambassador five days (a specialist's good week earns nothing); the
    pilot is history."""
    shipped = load_rules(DEFAULT_RULES)
    confirm = {(b, t): rule.confirm_days for b, badge in shipped.badges.items() for t, rule in badge.tiers.items()}
    facets = {"creator", "connector", "helper", "innovator"}
    assert {days for (b, _), days in confirm.items() if b in facets} == {7}
    assert confirm[("intranet_ambassador", Tier.SINGLE)] == 5
    assert confirm[("pilot_pioneer", Tier.SINGLE)] == 0


def test_a_tier_with_a_confirmation_period_is_granted_only_after_it(tmp_path: Path) -> None:
    rules = confirming(tmp_path, 3)
    holdings: dict = {}
    first = evaluate(rules, {"posts_30d": 3}, holdings, T0)
    assert [d.action for d in first] == [Action.QUALIFY]
    holdings = apply(holdings, first)
    assert evaluate(rules, {"posts_30d": 4}, holdings, T0 + timedelta(days=2)) == []  # still confirming
    granted = evaluate(rules, {"posts_30d": 3}, holdings, T0 + timedelta(days=3))
    assert [d.action for d in granted] == [Action.GRANT]
    assert granted[0].holding.held and granted[0].holding.qualifying_since is None


def test_the_confirmation_period_counts_calendar_days_not_hours(tmp_path: Path) -> None:
    """Figures of the same days decide alike whether they came late on a day (an import publishes a past day as
    of its end) or early on it (live figures as of the newest event)."""
    rules = confirming(tmp_path, 3)
    late_evening = T0.replace(hour=23, minute=59)
    holdings = apply({}, evaluate(rules, {"posts_30d": 3}, {}, late_evening))
    early = T0.replace(hour=0, minute=1) + timedelta(days=3)
    assert [d.action for d in evaluate(rules, {"posts_30d": 3}, holdings, early)] == [Action.GRANT]


def test_falling_below_grant_while_confirming_starts_the_period_over(tmp_path: Path) -> None:
    rules = confirming(tmp_path, 3)
    holdings = apply({}, evaluate(rules, {"posts_30d": 5}, {}, T0))  # a moment's burst
    dip = evaluate(rules, {"posts_30d": 2}, holdings, T0 + timedelta(days=1))
    assert [d.action for d in dip] == [Action.UNQUALIFY]
    holdings = apply(holdings, dip)
    again = evaluate(rules, {"posts_30d": 3}, holdings, T0 + timedelta(days=3))
    assert [d.action for d in again] == [Action.QUALIFY]  # not a grant: the period begins again
    holdings = apply(holdings, again)
    assert [d.action for d in evaluate(rules, {"posts_30d": 3}, holdings, T0 + timedelta(days=6))] == [Action.GRANT]


def test_an_opt_out_while_confirming_stops_the_period(tmp_path: Path) -> None:
    rules = confirming(tmp_path, 3)
    holdings = apply({}, evaluate(rules, {"posts_30d": 3}, {}, T0))
    stopped = evaluate(rules, {"posts_30d": 3}, holdings, T0 + timedelta(days=4), may_grant=False)
    assert [d.action for d in stopped] == [Action.UNQUALIFY]
