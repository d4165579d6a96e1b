"""How well Catalyst found the simulated company's ambassadors (pure).

Compares the badges the recognition service holds at the end of the run with the simulator's ground truth.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass, field

from services.simulator.ground_truth import GroundTruth

AMBASSADOR = "intranet_ambassador"


@dataclass(frozen=True)
class Grant:
    employee_id: str
    badge: str
    tier: str
    at: dt.datetime


@dataclass
class Detection:
    precision: float
    recall: float
    true_positives: list[str]
    false_positives: list[str]
    missed: list[str]
    days_to_detection: dict[str, int]
    gamers_with_badges: dict[str, list[str]]
    gamers_total: int
    badges_by_persona: dict[str, Counter[str]] = field(default_factory=dict)

    @property
    def gamers_caught(self) -> int:
        """Gamers who hold no badge at all: their activity was seen and not rewarded."""
        return self.gamers_total - len(self.gamers_with_badges)


def first_grants(grants: list[Grant]) -> dict[tuple[str, str], dt.datetime]:
    """Earliest grant time per (employee, badge), whatever the tier."""
    first: dict[tuple[str, str], dt.datetime] = {}
    for g in grants:
        key = (g.employee_id, g.badge)
        if key not in first or g.at < first[key]:
            first[key] = g.at
    return first


def evaluate(truth: GroundTruth, holdings: dict[str, set[str]], grants: list[Grant]) -> Detection:
    """`holdings`: badges each employee holds at the end; `grants`: every grant seen during the run."""
    actual = set(truth.ambassadors)
    detected = {e for e, badges in holdings.items() if AMBASSADOR in badges}
    tp = sorted(actual & detected)
    fp = sorted(detected - actual)
    missed = sorted(actual - detected)
    first = first_grants(grants)
    launch = dt.datetime.combine(truth.launch_date, dt.time(), tzinfo=dt.UTC)
    days = {e: (first[(e, AMBASSADOR)] - launch).days for e in tp if (e, AMBASSADOR) in first}
    persona = {e.employee_id: e.persona for e in truth.employees}
    by_persona: dict[str, Counter[str]] = {}
    for employee, badges in holdings.items():
        for badge in badges:
            by_persona.setdefault(persona.get(employee, "unknown"), Counter())[badge] += 1
    gamers = set(truth.gamers)
    return Detection(
        precision=len(tp) / len(detected) if detected else 0.0,
        recall=len(tp) / len(actual) if actual else 1.0,
        true_positives=tp,
        false_positives=fp,
        missed=missed,
        days_to_detection=days,
        gamers_with_badges={g: sorted(holdings[g]) for g in sorted(gamers) if holdings.get(g)},
        gamers_total=len(gamers),
        badges_by_persona=by_persona,
    )
