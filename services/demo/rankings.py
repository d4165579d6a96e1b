"""Whether any leaderboard ranks a gamer above a genuine ambassador at work (offline, pure scoring code).

The badges are not the only view of the score: each person sees their own, and where a policy enables
rankings the leaderboards order people by it. This replays the simulated company through the engagement
worker's path in memory (as `offline.timeline` does) and, once a week after launch and on the last day,
ranks everyone by the total of each window the model ranks (`leaderboards.windows`), as a leaderboard of the
whole company would. Only those windows are judged: a window without a board ranks nobody. The 7-day window
has none, because a week of bursts or spam posts outscores an ambassador's quiet week by construction
(decision 0021).

The gamers are the simulator's (reaction rings, self-promoters who post in bursts, reaction bots) plus spam
posters added here: accounts that post many short posts a day for a few weeks up to the last day and do
nothing else, with nobody responding (the simplest thing a new user tries).

The comparison is with the genuine ambassadors at work in the window: those with own activity on at least
half of its days (for the decayed total, of the days of two half-lives). An ambassador on holiday for most of
the window has a small score in it, and anyone active then is above them; that is not gaming.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from dataclasses import dataclass

from catalyst.events.v1 import interactions_pb2 as ev

from services.demo import offline
from services.demo.states import MemoryStates, scored
from services.engagement.model.config import DECAYED, DEFAULT_SCORING_FILE, ScoringModel, load_model
from services.engagement.model.figures import TOTAL, figures, view
from services.engagement.model.state import DAY_MS
from services.feed import events as feed_events
from services.feed import ingest
from services.feed.domain import Limits
from services.simulator import wire
from services.simulator.actions import Action, ActionKind
from services.simulator.behaviour import Simulation
from services.simulator.ground_truth import ground_truth
from services.simulator.population import build_population
from services.simulator.scenario import Scenario, preset


@dataclass(frozen=True)
class SpamPosters:
    """Accounts that post `posts_a_day` short posts every day of the last `days` days and nothing else."""

    accounts: int = 3
    days: int = 20
    posts_a_day: int = 14


@dataclass(frozen=True)
class Standing:
    """One window's ranking on one day: the lowest-ranked ambassador at work and the highest-ranked gamer."""

    day: dt.date
    window: str
    ambassador: str
    ambassador_rank: int
    ambassador_score: float
    gamer: str
    gamer_kind: str
    gamer_rank: int
    gamer_score: float
    gamers_above: int  # gamers ranked above that ambassador
    median_rank: int  # of the ambassadors at work
    gamers_above_median: int


def _spam(scenario: Scenario, spam: SpamPosters, date: dt.date, last: dt.date) -> list[Action]:
    """The spam posters' posts of one day, as simulator actions so the feed's own conversion applies."""
    if not 0 <= (last - date).days < spam.days:
        return []
    start = dt.datetime.combine(date, dt.time(8), tzinfo=dt.UTC)
    return [
        Action(
            source_id=f"{scenario.id_prefix}-spam{n + 1}-{date.isoformat()}-{k}",
            kind=ActionKind.POST,
            actor_id=f"{scenario.id_prefix}-spam{n + 1}",
            occurred_at=start + dt.timedelta(minutes=40 * k + n),
            post_id=f"{scenario.id_prefix}-spam{n + 1}-p{date.isoformat()}-{k}",
            body_length=40,
        )
        for n in range(spam.accounts)
        for k in range(spam.posts_a_day)
    ]


def _ms(date: dt.date) -> int:
    return int(dt.datetime.combine(date, dt.time(), tzinfo=dt.UTC).timestamp() * 1000)


def _present(state_days: list[bool], ages: list[int], days: int) -> bool:
    """Own activity on at least half of the last `days` days."""
    return 2 * sum(1 for active, age in zip(state_days, ages, strict=True) if active and age < days) >= days


def standings(
    scenario: Scenario,
    cfg: ScoringModel,
    today: dt.date | None = None,
    spam: SpamPosters = SpamPosters(),
    every_days: int = 7,
) -> list[Standing]:
    """The standing of each window with a leaderboard once every `every_days` days after launch and on the last
    day."""
    today = today or dt.datetime.now(dt.UTC).date()
    scenario = scenario.resolve(today)
    population = build_population(scenario)
    simulation = Simulation(scenario, population)
    truth = ground_truth(scenario, population, simulation.traits)
    kind = {e.employee_id: e.persona for e in truth.employees if e.is_gamer}
    spammers = [f"{scenario.id_prefix}-spam{n + 1}" for n in range(spam.accounts)]
    kind |= dict.fromkeys(spammers, "gamer_spam_poster")
    ambassadors = set(truth.ambassadors)
    department = population.departments[0].department_id
    departments = {e.employee_id: e.department_id for e in population.employees} | dict.fromkeys(spammers, department)
    states = MemoryStates(cfg)
    start_ms = _ms(truth.pre_launch_start)
    states.feed(offline.registered(population, start_ms))
    states.feed(
        [
            feed_events.envelope(
                event_id=f"offline-registered:{s}",
                occurred_ms=start_ms,
                producer=feed_events.PRODUCER,
                employee_id=s,
                department_id=department,
                payload=ev.EmployeeRegistered(display_name=f"Spam Poster {n + 1}"),
            )
            for n, s in enumerate(spammers)
        ]
    )
    days = {**cfg.windows.days, DECAYED: round(2 * cfg.windows.decay_half_life_days)}
    windows = {w: days[w] for w in cfg.leaderboards.windows}
    limits = Limits()
    out: list[Standing] = []
    for date, envelopes in offline.company_days(scenario, population, simulation):
        extra = _spam(scenario, spam, date, truth.end_date)
        checked = (ingest.check_interaction(wire.imported(a), i, 2**62, 0, limits) for i, a in enumerate(extra))
        states.feed([*envelopes, *(ingest.envelope_for(offline.SOURCE, c, departments) for c in checked)])
        live_day = (date - truth.launch_date).days
        if live_day <= 0 or (live_day % every_days and date != truth.end_date):
            continue
        as_of = _ms(date) // DAY_MS
        totals: dict[str, dict[str, float]] = {}
        present: dict[str, set[str]] = {w: set() for w in windows}
        for employee in states.employees:
            state = states.state(employee)
            if state is None or not scored(state):
                continue
            windowed = figures(state, as_of, cfg).windows
            totals[employee] = {w: windowed[w][TOTAL] for w in windows}
            if employee in ambassadors:
                v = view(state, as_of, cfg)
                for w, days in windows.items():
                    if _present(v.active, v.ages, days):
                        present[w].add(employee)
        for w in windows:
            ranked = sorted(totals, key=lambda e: (-totals[e][w], e))
            rank = {e: i + 1 for i, e in enumerate(ranked)}
            at_work = sorted(present[w], key=lambda e: rank[e])
            gamers = sorted((e for e in totals if e in kind), key=lambda e: rank[e])
            if not at_work or not gamers:
                continue
            worst, best, median = at_work[-1], gamers[0], at_work[(len(at_work) - 1) // 2]
            out.append(
                Standing(
                    date,
                    w,
                    worst,
                    rank[worst],
                    totals[worst][w],
                    best,
                    kind[best],
                    rank[best],
                    totals[best][w],
                    sum(1 for g in gamers if rank[g] < rank[worst]),
                    rank[median],
                    sum(1 for g in gamers if rank[g] < rank[median]),
                )
            )
    return out


def table(found: list[Standing]) -> str:
    """Per window over all days judged: pass when no gamer ever ranked above the lowest ambassador at work, how
    often a gamer ranked above the lowest and above the median ambassador at work, the day the best gamer came
    closest to (or furthest above) the lowest, and the last day, as a Markdown table."""
    lines = [
        "| window | result | days judged | a gamer above the lowest ambassador at work | above the median | "
        "best gamer's highest rank | closest day: best gamer vs lowest ambassador at work (rank, score) | last day |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for w in dict.fromkeys(s.window for s in found):
        mine = [s for s in found if s.window == w]
        closest = min(mine, key=lambda s: s.ambassador_score - s.gamer_score)
        above = sum(1 for s in mine if s.gamers_above)
        lines.append(
            f"| {w} | {'fail' if above else 'pass'} | {len(mine)} | {above} "
            f"| {sum(1 for s in mine if s.gamers_above_median)} | #{min(s.gamer_rank for s in mine)} "
            f"| {closest.day}: {_pair(closest)} | {_pair(mine[-1])} |"
        )
    return "\n".join(lines)


def _pair(s: Standing) -> str:
    return (
        f"{s.gamer_kind.removeprefix('gamer_')} #{s.gamer_rank} ({s.gamer_score:.0f}) vs "
        f"#{s.ambassador_rank} ({s.ambassador_score:.0f}), {s.gamers_above} gamer(s) above"
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m services.demo.rankings", description=__doc__.splitlines()[0])
    p.add_argument("--scenario", default="default")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--scoring", default=str(DEFAULT_SCORING_FILE))
    p.add_argument("--today", type=dt.date.fromisoformat, default=None, help="run day (YYYY-MM-DD)")
    args = p.parse_args(argv)
    found = standings(preset(args.scenario, args.seed), load_model(args.scoring), args.today)
    print(table(found))
    return 0 if not any(s.gamers_above for s in found) else 3


if __name__ == "__main__":
    sys.exit(main())
