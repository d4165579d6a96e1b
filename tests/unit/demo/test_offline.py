"""The offline harness: the simulated company through the pure scoring and badge rules, without services."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from services.demo import offline
from services.demo.evaluation import Detection
from services.engagement.model.config import load_model
from services.feed import events as feed_events
from services.recognition.config import DEFAULT_RULES
from services.recognition.rules import Rules, load_rules
from services.simulator.behaviour import Simulation
from services.simulator.population import build_population
from services.simulator.scenario import preset

TODAY = dt.date(2026, 11, 26)
CFG = load_model()


@pytest.fixture(scope="module")
def rules() -> Rules:
    return load_rules(DEFAULT_RULES)


@pytest.fixture(scope="module")
def small_live() -> offline.Timeline:
    return offline.timeline(preset("small", 42), CFG, "live", TODAY)


def test_small_scenario_gives_a_detection_quickly(small_live: offline.Timeline, rules: Rules) -> None:
    outcome = offline.recognise(small_live, rules)
    assert isinstance(outcome.detection, Detection)
    assert outcome.detection.gamers_total == len(outcome.truth.gamers) > 0
    assert outcome.events > len(outcome.truth.employees)
    assert len(small_live.days) == outcome.scenario.total_days
    assert 0.0 <= outcome.detection.precision <= 1.0 and 0.0 <= outcome.detection.recall <= 1.0
    assert all(g.at.date() <= outcome.truth.end_date for g in outcome.grants)
    text = offline.summary(outcome, rules)
    assert "precision" in text and "gamers with badges" in text and "emerging list:" in text
    assert not set(outcome.emerging_first) & set(outcome.truth.gamers)


def test_same_seed_same_result(small_live: offline.Timeline, rules: Rules) -> None:
    again = offline.timeline(preset("small", 42), CFG, "live", TODAY)
    first, second = offline.recognise(small_live, rules), offline.recognise(again, rules)
    assert first.detection == second.detection
    assert first.grants == second.grants
    assert first.holdings == second.holdings
    assert first.final_figures == second.final_figures


def test_the_run_day_only_moves_dates_in_the_live_clock(small_live: offline.Timeline, rules: Rules) -> None:
    later = offline.recognise(offline.timeline(preset("small", 42), CFG, "live", TODAY + dt.timedelta(days=7)), rules)
    now = offline.recognise(small_live, rules)
    assert later.holdings == now.holdings
    assert later.detection.days_to_detection == now.detection.days_to_detection


def test_snapshot_judges_the_figures_as_of_the_run_day(rules: Rules) -> None:
    line = offline.timeline(preset("small", 42), CFG, "snapshot", TODAY)
    (only,) = line.days
    at, employees, _ = only
    assert at.date() == TODAY
    assert set(employees) == set(line.final)
    assert isinstance(offline.recognise(line, rules).detection, Detection)


def test_envelopes_are_the_feeds(rules: Rules) -> None:
    scenario = preset("small", 3).resolve(TODAY)
    population = build_population(scenario)
    days = list(offline.company_days(scenario, population, Simulation(scenario, population)))
    assert [d for d, _ in days][0] == scenario.require_launch_date() - dt.timedelta(days=scenario.pre_launch_days)
    assert len(days) == scenario.total_days
    departments = {e.employee_id: e.department_id for e in population.employees}
    envelopes = [env for _, day in days for env in day]
    assert len({env.event_id for env in envelopes}) == len(envelopes)
    for env in envelopes:
        assert env.department_id == departments[env.employee_id]
        assert env.producer == feed_events.ingest_producer(offline.SOURCE)
        assert env.type == f"catalyst.events.v1.{type(getattr(env, env.WhichOneof('payload'))).__name__}"
    registered = offline.registered(population, 1_000)
    assert {e.employee_id for e in registered} == set(departments)
    assert all(e.WhichOneof("payload") == "employee_registered" for e in registered)


def test_timelines_are_cached_by_scenario_clock_and_config(tmp_path: Path, rules: Rules) -> None:
    scenario = preset("small", 5)
    first = offline.cached_timeline(scenario, CFG, "live", TODAY, tmp_path)
    (path,) = tmp_path.iterdir()
    assert path.name.startswith("small-5-live-")
    second = offline.cached_timeline(scenario, CFG, "live", TODAY, tmp_path)
    assert offline.recognise(second, rules).detection == offline.recognise(first, rules).detection
    other = CFG.model_copy(update={"caps": {**CFG.caps, "given": CFG.caps["given"] + 1}})
    offline.cached_timeline(scenario, other, "live", TODAY, tmp_path)
    assert len(list(tmp_path.iterdir())) == 2


def test_recognition_confirms_then_revokes_after_the_grace_period_like_the_service(rules: Rules) -> None:
    recognition = offline.Recognition(rules)
    start = dt.datetime(2026, 3, 2, 18, tzinfo=dt.UTC)
    helper = rules.badges["helper"]
    tier = helper.tiers[next(iter(helper.tiers))]
    bronze = {c.metric: c.grant for c in tier.criteria}
    recognition.apply("e1", bronze, start)
    assert recognition.grants == []  # confirming
    granted = start + dt.timedelta(days=tier.confirm_days)
    recognition.apply("e1", bronze, granted)
    assert [(g.badge, g.tier) for g in recognition.grants] == [("helper", "bronze")]
    below = dict.fromkeys(bronze, 0.0)
    recognition.apply("e1", below, granted + dt.timedelta(days=1))
    assert recognition.at_risk == {"e1"}
    recognition.apply("e1", below, granted + dt.timedelta(days=1 + tier.grace_days))
    assert recognition.revocations == 1 and recognition.held() == {} and recognition.at_risk == set()


def test_main_prints_the_summary(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code = offline.main(
        ["--scenario", "small", "--seed", "42", "--today", TODAY.isoformat(), "--cache-dir", str(tmp_path)]
    )
    out = capsys.readouterr().out
    assert code in (0, 3)
    assert "scenario small, seed 42, clock live" in out and "precision" in out


def test_shapes_report_detection_per_company(rules: Rules) -> None:
    (outcome,) = offline.shapes(CFG, rules, 42, cache_dir=None, names=("small",))
    table = offline.shapes_table([outcome])
    assert table.splitlines()[0].startswith("| company | employees | activity |")
    assert table.splitlines()[2].startswith("| small (seed 42) | 60 | 1 |")
