"""The main job without the services: the simulated company through the pure scoring and badge rules.

Runs in seconds to minutes instead of the full stack's many minutes, so the rule files can be tuned against
the simulator's ground truth (docs/tuning.md). Every step reuses the services' own pure code:

1. the simulator's actions (`services/simulator`) become ImportedInteractions (`wire.imported`) and then the
   Envelopes the feed would publish (`feed.ingest.check_interaction` + `envelope_for`); the directory becomes
   EmployeeRegistered envelopes as `feed.handlers.upsert_employees` emits them;
2. the engagement worker's own path in memory (`demo.states.MemoryStates`: `worker.handler.plan` and the
   merges of `engagement/model/state.py`) keeps each employee's state, and `model.figures` gives the figures
   the publisher would publish;
3. the recognition rules (`recognition.rules.evaluate`, the same call `handlers.Recognition.apply_scores`
   makes, with the same holdings transitions) turn figures into grants and revocations;
4. `demo.evaluation.evaluate` scores the badges held at the end against the ground truth.

Every action counts at its simulated time, including the handful the real demo replays at the end through
CreatePost / AddComment / AddReaction (the feed gives those its own, later time).

Two clocks:

- ``live``: the engagement worker's clock is the newest interaction time it has seen, so Catalyst moves
  through the history day by day, as in production and as `python -m services.demo` drives the real stack
  (directory facts do not move that clock). Figures are evaluated at the end of every simulated day for
  every employee with state (the publisher re-publishes everyone on a day rollover), so windows move, grace
  periods run and badges are revoked.
- ``snapshot``: everyone is judged once, on figures as of the run day, with no earlier badge to keep. This
  is what the real demo measured while the directory's wall-clock registration set the worker's clock (all
  figures as of the run day, recognition's clock standing still there; figures only grow as history
  arrives, so the final figures decide). It is the harshest test of recall: an ambassador whose last month
  was a holiday is judged on that month alone.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import datetime as dt
import hashlib
import json
import pickle
import sys
from array import array
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from catalyst.events.v1 import envelope_pb2
from catalyst.events.v1 import interactions_pb2 as ev

from services.demo import states as states_module
from services.demo.evaluation import AMBASSADOR, Detection, Grant, evaluate
from services.demo.states import MemoryStates, scored
from services.engagement.model import config as model_config
from services.engagement.model import distribution as model_distribution
from services.engagement.model import effects as model_effects
from services.engagement.model import figures as model_figures
from services.engagement.model import spec as model_spec
from services.engagement.model import state as model_state
from services.engagement.model import validation as model_validation
from services.engagement.model.config import DEFAULT_SCORING_FILE, ScoringModel, load_model
from services.engagement.model.distribution import Distribution, distribution
from services.engagement.model.figures import Figures, figures, flatten
from services.engagement.model.state import DAY_MS
from services.engagement.worker import handler as worker_handler
from services.feed import events as feed_events
from services.feed import ingest
from services.feed.domain import Limits
from services.recognition import emerging
from services.recognition.calibration import Calibration, calibrated_metrics, source_day
from services.recognition.config import DEFAULT_RULES
from services.recognition.rules import Action, Criterion, Holding, Rules, Tier, load_rules
from services.recognition.rules import evaluate as evaluate_rules
from services.simulator import behaviour, traits, wire
from services.simulator import population as population_module
from services.simulator.behaviour import Simulation
from services.simulator.ground_truth import GroundTruth, ground_truth
from services.simulator.population import Population, build_population
from services.simulator.scenario import SHAPES, Scenario, preset

SOURCE = "simulator"
CLOCKS = ("live", "snapshot")
CACHE_DIR = Path(__file__).resolve().parents[2] / ".cache" / "offline"
NEAR = 0.25  # a criterion within this share of its threshold is "near" it in the explanations


@dataclass
class Outcome:
    """One offline run: the detection quality and what it was computed from."""

    scenario: Scenario
    clock: str
    truth: GroundTruth
    detection: Detection
    holdings: dict[str, set[str]]
    grants: list[Grant]
    revocations: int
    final_figures: dict[str, dict[str, float]]
    peak_figures: dict[str, dict[str, float]] = field(default_factory=dict)
    events: int = 0
    emerging_first: dict[str, dt.datetime] = field(default_factory=dict)  # first day on the emerging list


def registered(population: Population, at_ms: int) -> list[envelope_pb2.Envelope]:
    """The EmployeeRegistered events `upsert_employees` publishes for a fresh directory."""
    return [
        feed_events.envelope(
            event_id=f"offline-registered:{e.employee_id}",
            occurred_ms=at_ms,
            producer=feed_events.PRODUCER,
            employee_id=e.employee_id,
            department_id=e.department_id,
            payload=ev.EmployeeRegistered(display_name=e.display_name, is_manager=e.is_manager),
        )
        for e in population.employees
    ]


def company_days(
    scenario: Scenario, population: Population, simulation: Simulation
) -> Iterator[tuple[dt.date, list[envelope_pb2.Envelope]]]:
    """Each simulated day's interactions as the feed publishes them (validated like IngestInteractions)."""
    departments = {e.employee_id: e.department_id for e in population.employees}
    limits = Limits()
    never_future = 2**62
    for day in simulation.days():
        envelopes = []
        for index, action in enumerate(day.actions):
            checked = ingest.check_interaction(wire.imported(action), index, never_future, 0, limits)
            envelopes.append(ingest.envelope_for(SOURCE, checked, departments))
        yield day.date, envelopes


class Recognition:
    """Holdings per employee, changed by rule decisions exactly as `handlers.Recognition._apply` does."""

    def __init__(self, rules: Rules) -> None:
        self.rules = rules
        self.holdings: dict[str, dict[tuple[str, Tier], Holding]] = {}
        self.grants: list[Grant] = []
        self.revocations = 0
        self.at_risk: set[str] = set()
        self.calibration: Calibration | None = None
        self.emerging_first: dict[str, dt.datetime] = {}
        badge = rules.coverage.badge
        self.coverage = (badge, rules.badge(badge).ordered_tiers()[0])

    def recalibrate(self, distributions: Mapping[int, Distribution], at: dt.datetime) -> bool:
        """The calibration for figures as of `at`, chosen among the days' distributions as the service chooses
        (`calibration.source_day`); True when it changed."""
        if not calibrated_metrics(self.rules):
            return False
        day = source_day(self.rules, distributions, at)
        calibration = None if day is None else Calibration.of(self.rules, distributions[day], at)
        changed = calibration != self.calibration
        self.calibration = calibration
        return changed

    def apply(self, employee: str, flat: Mapping[str, float], at: dt.datetime) -> None:
        current = self.holdings.setdefault(employee, {})
        for d in evaluate_rules(self.rules, flat, current, at, calibration=self.calibration):
            current[(d.badge, d.tier)] = d.holding
            if d.action is Action.GRANT:
                self.grants.append(Grant(employee, d.badge, d.tier.value, d.at))
            elif d.action is Action.REVOKE:
                self.revocations += 1
        if employee not in self.emerging_first:
            seen = emerging.outlook(self.rules, flat, current.get(self.coverage), at, self.calibration)
            if seen.on_track:
                self.emerging_first[employee] = at
        if any(h.held and h.at_risk_since is not None for h in current.values()):
            self.at_risk.add(employee)
        else:
            self.at_risk.discard(employee)

    def held(self) -> dict[str, set[str]]:
        return {
            e: {badge for (badge, _), h in hs.items() if h.held}
            for e, hs in self.holdings.items()
            if any(h.held for h in hs.values())
        }


@dataclass
class Timeline:
    """The engagement side of a run, independent of the badge rules (so it can be cached and re-judged).

    `days` holds, per evaluation moment, the figures of the employees whose figures differ from their last
    evaluation, packed as `values[i * len(metrics) + m]`; `final` the figures of everyone at the end;
    `distributions` the company's distribution of every day, as the publisher sends it (decision 0025).
    """

    scenario: Scenario
    clock: str
    truth: GroundTruth
    events: int
    metrics: tuple[str, ...]
    days: list[tuple[dt.datetime, list[str], array]]
    final: dict[str, dict[str, float]]
    distributions: dict[int, Distribution]


def _flat(f: Figures) -> dict[str, float]:
    return flatten(f.signals, f.windows)


def timeline(scenario: Scenario, cfg: ScoringModel, clock: str = "live", today: dt.date | None = None) -> Timeline:
    """Simulates `scenario` through the feed's conversion and the engagement worker's path in memory.

    `today` is the run day: it resolves a scenario without a launch date (as the demo does) and is the
    snapshot clock; detection does not depend on it otherwise (launches are Mondays, weeks are ISO weeks).
    """
    if clock not in CLOCKS:
        raise ValueError(f"unknown clock {clock!r}; choose one of {', '.join(CLOCKS)}")
    today = today or dt.datetime.now(dt.UTC).date()
    scenario = scenario.resolve(today)
    population = build_population(scenario)
    simulation = Simulation(scenario, population)
    truth = ground_truth(scenario, population, simulation.traits)
    states = MemoryStates(cfg)
    run_day = _ms(today) // DAY_MS
    states.feed(registered(population, _ms(truth.pre_launch_start)))
    events = len(population.employees)
    metrics: tuple[str, ...] = ()
    last: dict[str, tuple[float, ...]] = {}
    days: list[tuple[dt.datetime, list[str], array]] = []
    distributions: dict[int, Distribution] = {}
    for date, envelopes in company_days(scenario, population, simulation):
        states.feed(envelopes)
        events += len(envelopes)
        if clock == "snapshot":
            continue  # figures as of the run day only grow with history: the end decides (module docstring)
        as_of = _ms(date) // DAY_MS
        at = dt.datetime.fromtimestamp(max(states.newest_ms, as_of * DAY_MS) / 1000, dt.UTC)
        changed: list[str] = []
        values = array("d")
        everyone = []
        for employee in states.employees:
            state = states.state(employee)
            if state is None or not scored(state):
                continue
            flat = _flat(figures(state, max(state.top, as_of), cfg))
            everyone.append(flat)
            metrics = metrics or tuple(sorted(flat))
            row = tuple(flat.get(m, 0.0) for m in metrics)
            if last.get(employee) != row:
                last[employee] = row
                changed.append(employee)
                values.extend(row)
        days.append((at, changed, values))
        distributions[as_of] = distribution(as_of, everyone, cfg.distribution)
    end = run_day if clock == "snapshot" else _ms(truth.end_date) // DAY_MS
    final = {}
    for employee in states.employees:
        state = states.state(employee)
        if state is not None and scored(state):
            final[employee] = _flat(figures(state, max(state.top, end), cfg))
    if clock == "snapshot":
        at = dt.datetime.fromtimestamp(max(states.newest_ms, end * DAY_MS) / 1000, dt.UTC)
        metrics = tuple(sorted(next(iter(final.values()), {})))
        days.append((at, list(final), array("d", (f.get(m, 0.0) for f in final.values() for m in metrics))))
        # Judged once, against the company as it stands at the end (as if the day before had ended so).
        distributions[end - 1] = distribution(end - 1, final.values(), cfg.distribution)
    return Timeline(scenario, clock, truth, events, metrics, days, final, distributions)


def _source_digest() -> str:
    """Changes whenever code that shapes the figures changes, so a stale cache is never used."""
    digest = hashlib.sha256()
    engagement = (
        model_config,
        model_distribution,
        model_effects,
        model_figures,
        model_spec,
        model_state,
        model_validation,
    )
    for module in (behaviour, population_module, traits, wire, ingest, states_module, worker_handler, *engagement):
        digest.update(Path(module.__file__ or "").read_bytes())
    return digest.hexdigest()[:16]


def cached_timeline(
    scenario: Scenario, cfg: ScoringModel, clock: str, today: dt.date | None, cache_dir: Path | None
) -> Timeline:
    """`timeline`, kept in `cache_dir` by scenario, clock, scoring config and code (None: no cache)."""
    if cache_dir is None:
        return timeline(scenario, cfg, clock, today)
    today = today or dt.datetime.now(dt.UTC).date()
    run_day = today.isoformat() if clock == "snapshot" else ""  # only the snapshot figures depend on it
    parts = [scenario.model_dump(mode="json"), clock, run_day, cfg.model_dump(mode="json"), _source_digest()]
    key = hashlib.sha256(json.dumps(parts).encode()).hexdigest()[:24]
    path = cache_dir / f"{scenario.name}-{scenario.seed}-{clock}-{key}.pickle"
    if path.exists():
        return Timeline(**pickle.loads(path.read_bytes()))
    result = timeline(scenario, cfg, clock, today)
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    # The fields, not the object: under `python -m` the class lives in __main__, which another process lacks.
    tmp.write_bytes(pickle.dumps(vars(result), protocol=pickle.HIGHEST_PROTOCOL))
    tmp.replace(path)
    return result


def recognise(line: Timeline, rules: Rules) -> Outcome:
    """Runs the badge rules over a timeline and scores the badges held at the end."""
    recognition = Recognition(rules)
    used = sorted({c.metric for b in rules.badges.values() for t in b.tiers.values() for c in t.criteria})
    index = {m: i for i, m in enumerate(line.metrics)}
    columns = [(m, index[m]) for m in used if m in index]
    width = len(line.metrics)
    current: dict[str, dict[str, float]] = {}
    peak: dict[str, dict[str, float]] = {}
    for at, changed, values in line.days:
        for n, employee in enumerate(changed):
            base = n * width
            flat = current[employee] = {m: values[base + i] for m, i in columns}
            best = peak.setdefault(employee, {})
            for m, v in flat.items():
                if v > best.get(m, 0.0):
                    best[m] = v
        # Unchanged figures without an at-risk tier decide nothing new (evaluate is a function of figures,
        # holdings, the calibration and, only for at-risk tiers, time), so only those two kinds of employees
        # are evaluated, and everyone when a new calibration moved the thresholds.
        everyone = recognition.recalibrate(line.distributions, at)
        for employee in sorted(current if everyone else {*changed, *recognition.at_risk}):
            recognition.apply(employee, current[employee], at)
    holdings = recognition.held()
    detection = evaluate(line.truth, holdings, recognition.grants)
    return Outcome(
        line.scenario,
        line.clock,
        line.truth,
        detection,
        holdings,
        recognition.grants,
        recognition.revocations,
        line.final,
        peak,
        line.events,
        recognition.emerging_first,
    )


def run(
    scenario: Scenario,
    cfg: ScoringModel,
    rules: Rules,
    clock: str = "live",
    today: dt.date | None = None,
    cache_dir: Path | None = None,
) -> Outcome:
    """The whole offline run: timeline (cached when `cache_dir` is given), then the rules."""
    return recognise(cached_timeline(scenario, cfg, clock, today, cache_dir), rules)


def _ms(date: dt.date) -> int:
    return int(dt.datetime.combine(date, dt.time(), tzinfo=dt.UTC).timestamp() * 1000)


# ---------------------------------------------------------------- the report


def nearness(criteria: Sequence[Criterion], values: Mapping[str, float]) -> list[str]:
    """Per criterion: the value against grant and keep, flagged when it misses or barely passes."""
    out = []
    for c in criteria:
        v = values.get(c.metric, 0.0)
        if v < c.grant:
            mark = "MISS" if v < c.grant * (1 - NEAR) else "near-miss"
        else:
            mark = "near-pass" if v < c.grant * (1 + NEAR) else "pass"
        out.append(f"{c.metric}={v:g} (grant {c.grant:g}, keep {c.keep:g}: {mark})")
    return out


def summary(outcome: Outcome, rules: Rules) -> str:
    d = outcome.detection
    persona = {e.employee_id: e.persona for e in outcome.truth.employees}
    specialty = {e.employee_id: e.specialty for e in outcome.truth.employees}
    badge = rules.badges.get(AMBASSADOR)
    criteria = badge.tiers[Tier.SINGLE].criteria if badge and Tier.SINGLE in badge.tiers else ()

    def who(e: str) -> str:
        extra = f"/{specialty[e]}" if specialty.get(e) else ""
        return f"{e} ({persona.get(e, '?')}{extra})"

    days = sorted(d.days_to_detection.values())
    lines = [
        f"scenario {outcome.scenario.name}, seed {outcome.scenario.seed}, clock {outcome.clock}: "
        f"{len(outcome.truth.employees)} employees, {outcome.events:,} events",
        f"precision {d.precision:.3f}  recall {d.recall:.3f}  ambassadors {len(outcome.truth.ambassadors)}  "
        f"recognised {len(d.true_positives) + len(d.false_positives)}  "
        f"gamers with badges {len(d.gamers_with_badges)}/{d.gamers_total}  revocations {outcome.revocations}",
        f"days after launch to recognition: {_days_text(days)}",
        "badges held at the end by persona:",
        *(
            f"  {p:28s} " + ", ".join(f"{b} {n}" for b, n in sorted(c.items()))
            for p, c in sorted(d.badges_by_persona.items())
        ),
        "false positives:" if d.false_positives else "false positives: none",
        *(f"  {who(e)}: " + "; ".join(nearness(criteria, outcome.final_figures.get(e, {}))) for e in d.false_positives),
        "missed:" if d.missed else "missed: none",
        *(
            f"  {who(e)}: end "
            + "; ".join(nearness(criteria, outcome.final_figures.get(e, {})))
            + " | peak "
            + ", ".join(f"{c.metric}={outcome.peak_figures.get(e, {}).get(c.metric, 0.0):g}" for c in criteria)
            for e in d.missed
        ),
        "gamers with badges:" if d.gamers_with_badges else "gamers with badges: none",
        *(f"  {who(g)}: {', '.join(b)}" for g, b in d.gamers_with_badges.items()),
        emerging_text(outcome),
    ]
    return "\n".join(lines)


def emerging_text(outcome: Outcome) -> str:
    """How early the programme owner's emerging list (recognition/emerging.py) shows the ambassadors, and who
    else it ever showed."""
    launch = outcome.truth.launch_date
    first = outcome.emerging_first
    ambassadors = [e for e in outcome.truth.ambassadors if e in first]
    days = sorted((first[e].date() - launch).days for e in ambassadors)
    gamers = [g for g in outcome.truth.gamers if g in first]
    return (
        f"emerging list: {len(ambassadors)} of {len(outcome.truth.ambassadors)} ambassadors on it, first "
        f"{_days_text(days)} days after launch; {len(first)} people ever on it, {len(gamers)} gamers"
    )


def _days_text(days: list[int]) -> str:
    if not days:
        return "n/a"
    return f"median {days[len(days) // 2]}, range {days[0]} to {days[-1]}"


def shapes_table(outcomes: Sequence[Outcome]) -> str:
    """One line per company shape: detection quality where the rules were not tuned, as a Markdown table."""
    lines = [
        "| company | employees | activity | ambassadors | precision | recall | gamers with badges "
        "| days after launch to recognition |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for o in outcomes:
        d, s = o.detection, o.scenario
        lines.append(
            f"| {s.name} (seed {s.seed}) | {len(o.truth.employees)} | {s.activity:g} | {len(o.truth.ambassadors)} "
            f"| {d.precision:.2f} | {d.recall:.2f} | {len(d.gamers_with_badges)} / {d.gamers_total} "
            f"| {_days_text(sorted(d.days_to_detection.values()))} |"
        )
    return "\n".join(lines)


def _shape(job: tuple[str, int, ScoringModel, Rules, Path | None]) -> Outcome:
    name, seed, cfg, rules, cache_dir = job
    return run(preset(name, seed), cfg, rules, "live", None, cache_dir)


def shapes(
    cfg: ScoringModel,
    rules: Rules,
    seed: int = 42,
    cache_dir: Path | None = CACHE_DIR,
    names: Sequence[str] = SHAPES,
    workers: int = 1,
) -> list[Outcome]:
    """Every company shape through the live clock: the rules judged on companies they were not tuned on
    (`workers` processes: each uncached shape takes minutes)."""
    jobs = [(name, seed, cfg, rules, cache_dir) for name in names]
    if workers <= 1:
        return [_shape(job) for job in jobs]
    with concurrent.futures.ProcessPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(_shape, jobs))


def meets_targets(detection: Detection, precision: float = 0.9, recall: float = 0.9) -> bool:
    return detection.precision >= precision and detection.recall >= recall and not detection.gamers_with_badges


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m services.demo.offline", description=__doc__.splitlines()[0])
    p.add_argument("--scenario", default="default")
    p.add_argument("--seed", type=int, action="append", help="repeat for several seeds (default 42)")
    p.add_argument("--clock", choices=CLOCKS, action="append", help="repeat for both (default live)")
    p.add_argument("--scoring", default=str(DEFAULT_SCORING_FILE))
    p.add_argument("--rules", default=str(DEFAULT_RULES))
    p.add_argument("--today", type=dt.date.fromisoformat, default=None, help="run day (YYYY-MM-DD)")
    p.add_argument("--cache-dir", type=Path, default=CACHE_DIR, help="where timelines are kept")
    p.add_argument("--no-cache", action="store_true", help="recompute the figures")
    p.add_argument("--shapes", action="store_true", help=f"every company shape ({', '.join(SHAPES)}), live clock")
    args = p.parse_args(argv)
    cfg = load_model(args.scoring)
    rules = load_rules(args.rules)
    if args.shapes:
        cache = None if args.no_cache else args.cache_dir
        outcomes = []
        for seed in args.seed or [42]:
            for outcome in shapes(cfg, rules, seed, cache):
                print(summary(outcome, rules), end="\n\n", flush=True)
                outcomes.append(outcome)
        print(shapes_table(outcomes))
        return 0 if all(meets_targets(o.detection) for o in outcomes) else 3
    ok = True
    for seed in args.seed or [42]:
        for clock in args.clock or ["live"]:
            cache = None if args.no_cache else args.cache_dir
            outcome = run(preset(args.scenario, seed), cfg, rules, clock, args.today, cache)
            print(summary(outcome, rules), end="\n\n", flush=True)
            ok = ok and meets_targets(outcome.detection)
    return 0 if ok else 3


if __name__ == "__main__":
    sys.exit(main())
