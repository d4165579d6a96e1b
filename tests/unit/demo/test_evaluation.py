"""Detection quality against the simulator's ground truth, and the report built from it."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from catalyst.recognition.v1 import recognition_pb2

from services.common.policy import load_policy
from services.demo import report
from services.demo.evaluation import AMBASSADOR, Grant, evaluate
from services.simulator.ground_truth import DepartmentTruth, EmployeeTruth, GroundTruth

LAUNCH = dt.date(2026, 3, 1)


def person(eid: str, persona: str, ambassador: bool = False, gamer: bool = False) -> EmployeeTruth:
    return EmployeeTruth(
        employee_id=eid, display_name=eid, department_id="d1", team_id="t1", is_manager=False,
        persona=persona, is_ambassador=ambassador, is_gamer=gamer,
    )  # fmt: skip


TRUTH = GroundTruth(
    scenario={}, seed=1, pre_launch_start=LAUNCH - dt.timedelta(days=30), launch_date=LAUNCH,
    end_date=LAUNCH + dt.timedelta(days=90), departments=[DepartmentTruth(department_id="d1", name="D", size=6)],
    gamer_groups=[],
    employees=[
        person("a1", "ambassador", ambassador=True), person("a2", "ambassador", ambassador=True),
        person("a3", "ambassador", ambassador=True), person("r1", "regular"), person("g1", "ring", gamer=True),
        person("g2", "react_only", gamer=True),
    ],
)  # fmt: skip


def at(days: int) -> dt.datetime:
    return dt.datetime.combine(LAUNCH, dt.time(), tzinfo=dt.UTC) + dt.timedelta(days=days)


def test_precision_recall_days_and_gamers() -> None:
    holdings = {"a1": {AMBASSADOR}, "a2": {AMBASSADOR, "creator"}, "r1": {AMBASSADOR}, "g2": {"connector"}}
    grants = [
        Grant("a1", AMBASSADOR, "single", at(20)), Grant("a1", AMBASSADOR, "single", at(40)),
        Grant("a2", AMBASSADOR, "single", at(12)), Grant("r1", AMBASSADOR, "single", at(30)),
    ]  # fmt: skip
    d = evaluate(TRUTH, holdings, grants)
    assert d.true_positives == ["a1", "a2"]
    assert d.false_positives == ["r1"]
    assert d.missed == ["a3"]
    assert d.precision == 2 / 3
    assert d.recall == 2 / 3
    assert d.days_to_detection == {"a1": 20, "a2": 12}
    assert d.gamers_with_badges == {"g2": ["connector"]}
    assert d.gamers_caught == 1
    assert d.badges_by_persona["ambassador"][AMBASSADOR] == 2
    assert report.verdicts(d) == {"precision >= 0.9": False, "recall >= 0.9": False, "no gamer holds a badge": False}


def test_report_is_written_with_plots(tmp_path: Path) -> None:
    holdings = {"a1": {AMBASSADOR}, "a2": {AMBASSADOR}, "a3": {AMBASSADOR}}
    grants = [Grant(e, AMBASSADOR, "single", at(10)) for e in holdings]
    d = evaluate(TRUTH, holdings, grants)
    coverage = recognition_pb2.GetDepartmentCoverageResponse(
        departments=[
            recognition_pb2.DepartmentCoverage(
                department_id="d1", employees=6, ambassadors=3, ratio=0.5, target_ratio=0.05, meets_target=True
            )
        ]
    )
    pilot = recognition_pb2.ProposePilotGroupResponse(
        candidates=[recognition_pb2.PilotCandidate(employee_id="a1", department_id="d1", pilot_score=3, reason="x")]
    )
    funnel = recognition_pb2.GetProgrammeFunnelResponse(min_group_size=5)
    funnel.stages.add(detected=9, pending=1, declined=2, accepted=6, trained=4, active=5, lapsed=1, volunteered=3)
    funnel.stages[0].lapse_reasons.add(reason="inactive", count=5)
    funnel.adoption.departments_with = 2
    funnel.adoption.with_ambassadors.people, funnel.adoption.with_ambassadors.active_30d_share = 40, 0.7
    week = funnel.adoption_history.add(week="2026-03-02")
    week.adoption.without_ambassadors.active_30d_share = 0.3
    managers = recognition_pb2.GetManagerActivityResponse(min_group_size=5, too_small=["d9"])
    row = managers.departments.add(department_id="d1")
    row.managers.people, row.others.people, row.managers.active_30d_share = 5, 30, 0.8
    facts = report.RunFacts(100, 120, 5.0, 40, {"accepted": 6, "withdrew": 1})
    views = report.Programme(funnel, managers)
    path = report.write(tmp_path, TRUTH, d, coverage, pilot, facts, load_policy(), views=views)
    text = path.read_text()
    assert "| company | 3 (0) | 9 | 1 | 2 | 6 | 4 | 5 | 1 |" in text and "inactive 5" in text
    assert "6 accepted, 1 withdrew" in text and "| 40 | 0% | 70% |" in text and "too few to show" in text
    assert "| d1 | managers | 5 | 0% | 80% |" in text and "compare: d9" in text
    assert "works_council profile" in text and "rankings of people: none" in text
    assert "PASS: precision >= 0.9" in text and "PASS: no gamer holds a badge" in text
    assert "| precision | 1.00 |" in text
    for png in ("detection.png", "coverage.png", "badges_by_persona.png", "adoption.png"):
        assert (tmp_path / png).read_bytes().startswith(b"\x89PNG")


def test_the_emerging_list_is_reported_in_counts_against_the_ground_truth() -> None:
    emerging = recognition_pb2.ListEmergingResponse()
    soon = emerging.emerging.add(employee_id="a3")
    soon.qualifying_since.FromDatetime(at(88))
    soon.expected_at.FromDatetime(at(93))
    later = emerging.emerging.add(employee_id="r1")
    later.expected_at.FromDatetime(at(150))
    emerging.emerging.add(employee_id="a2")
    text = "\n".join(report.emerging_section(emerging, TRUTH))
    assert "| on the list | 3 |" in text and "| meeting the criteria (the confirmation runs) | 1 |" in text
    assert "| expected within 30 days | 1 |" in text and "does not grow with activity) | 1 |" in text
    assert "| genuine ambassadors (ground truth) | 2 |" in text and "| gamers (ground truth) | 0 |" in text
    assert "a3" not in text and "r1" not in text  # counts only
