"""The main job's report: Markdown with PNG plots in reports/, and the same figures for the terminal."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from catalyst.recognition.v1 import recognition_pb2

from services.common.policy import Policy
from services.demo.evaluation import Detection
from services.simulator.ground_truth import GroundTruth

PRECISION_TARGET = 0.9
RECALL_TARGET = 0.9


@dataclass
class RunFacts:
    events_sent: int
    simulated_days: int
    wall_seconds: float
    score_events: int
    answers: dict[str, int] = field(default_factory=dict)  # what the simulated programme did: accepted, declined, ...


@dataclass
class Programme:
    """The programme's own views, as the programme owner reads them at the end of the run."""

    funnel: recognition_pb2.GetProgrammeFunnelResponse = field(
        default_factory=recognition_pb2.GetProgrammeFunnelResponse
    )
    managers: recognition_pb2.GetManagerActivityResponse = field(
        default_factory=recognition_pb2.GetManagerActivityResponse
    )
    emerging: recognition_pb2.ListEmergingResponse = field(default_factory=recognition_pb2.ListEmergingResponse)


def verdicts(detection: Detection) -> dict[str, bool]:
    return {
        f"precision >= {PRECISION_TARGET}": detection.precision >= PRECISION_TARGET,
        f"recall >= {RECALL_TARGET}": detection.recall >= RECALL_TARGET,
        "no gamer holds a badge": not detection.gamers_with_badges,
    }


def _persona(truth: GroundTruth) -> dict[str, str]:
    return {e.employee_id: e.persona for e in truth.employees}


def plot_detection(detection: Detection, truth: GroundTruth, path: Path) -> None:
    days = sorted(detection.days_to_detection.values())
    fig, ax = plt.subplots(figsize=(7, 3.5))
    if days:
        ax.step(days, range(1, len(days) + 1), where="post", label="genuine ambassadors detected")
    ax.axhline(len(truth.ambassadors), color="grey", linestyle="--", label="genuine ambassadors (ground truth)")
    ax.set_xlabel("days after launch")
    ax.set_ylabel("ambassadors")
    ax.set_title("When Catalyst recognised each genuine ambassador")
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_coverage(coverage: recognition_pb2.GetDepartmentCoverageResponse, path: Path) -> None:
    departments = list(coverage.departments)
    fig, ax = plt.subplots(figsize=(7, 3.5))
    names = [d.department_id for d in departments]
    ax.bar(
        names, [d.ratio for d in departments], color=["tab:green" if d.meets_target else "tab:red" for d in departments]
    )
    if departments:
        ax.axhline(departments[0].target_ratio, color="grey", linestyle="--", label="target ratio")
        ax.legend()
    ax.set_ylabel("ambassadors per employee")
    ax.set_title("Ambassador coverage by department")
    ax.tick_params(axis="x", rotation=45)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_badges_by_persona(detection: Detection, path: Path) -> None:
    personas = sorted(detection.badges_by_persona)
    badges = sorted({b for c in detection.badges_by_persona.values() for b in c})
    fig, ax = plt.subplots(figsize=(7, 3.5))
    bottom = [0] * len(personas)
    for badge in badges:
        values = [detection.badges_by_persona[p][badge] for p in personas]
        ax.bar(personas, values, bottom=bottom, label=badge)
        bottom = [b + v for b, v in zip(bottom, values, strict=True)]
    ax.set_ylabel("badges held at the end")
    ax.set_title("Badges by simulated persona")
    ax.tick_params(axis="x", rotation=30)
    if badges:
        ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_adoption(funnel: recognition_pb2.GetProgrammeFunnelResponse, path: Path) -> None:
    """The weekly snapshots (a week the event-time clock jumped over has none), then the end of the run."""
    weeks = [(w.week, w.adoption) for w in funnel.adoption_history] + [("end of run", funnel.adoption)]
    fig, ax = plt.subplots(figsize=(7, 3.5))
    for name, label in (("with_ambassadors", "colleagues of ambassadors"), ("without_ambassadors", "no ambassador")):
        points = [(i, getattr(a, name).active_30d_share) for i, (_, a) in enumerate(weeks) if a.HasField(name)]
        if points:
            ax.plot([i for i, _ in points], [v for _, v in points], marker="o", label=label)
    ax.set_xticks(range(len(weeks)), [week for week, _ in weeks])
    ax.set_ylabel("active in the last 30 days")
    ax.set_ylim(0, 1)
    ax.set_title("Adoption in departments with and without an ambassador")
    ax.tick_params(axis="x", rotation=60, labelsize="x-small")
    if weeks:
        ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _share(group: recognition_pb2.GroupActivity) -> str:
    return (
        f"{group.people} | {group.active_7d_share:.0%} | {group.active_30d_share:.0%} | "
        f"{group.mean_active_days_30d:.1f} | {group.median_score_30d:.1f}"
    )


def programme_section(views: Programme, facts: RunFacts) -> list[str]:
    """The funnel, why people lapsed, adoption with and without ambassadors, and managers as role models."""
    f, m = views.funnel, views.managers
    k = f.min_group_size
    lines = [
        "## The ambassador programme",
        "",
        "While the simulated months passed, the company ran the programme through RecognitionService: each "
        "invited person answered as people would (simulated), some volunteered before anyone found them, the "
        "programme owner offered a training to everyone who accepted and confirmed it once taken, and at the end "
        "a few ambassadors withdrew. What happened: "
        + (", ".join(f"{n} {what}" for what, n in sorted(facts.answers.items())) or "nothing")
        + ".",
        "",
        f"The funnel as the service counts it (departments of at least {k} people; detected = pending + accepted "
        "+ declined, accepted = active + lapsed):",
        "",
        "| scope | volunteered (invited) | detected | pending | declined | accepted | trained | active | lapsed |",
        "|---|---|---|---|---|---|---|---|---|",
        *(
            f"| {s.department_id or 'company'} | {s.volunteered} ({s.volunteers_invited}) | {s.detected} | "
            f"{s.pending} | {s.declined} | {s.accepted} | {s.trained} | {s.active} | {s.lapsed} |"
            for s in f.stages
        ),
        "",
    ]
    if f.stages:
        reasons = ", ".join(f"{r.reason} {r.count}" for r in f.stages[0].lapse_reasons)
        lines += [
            f"Why ambassadors lapsed (reasons shared by at least {k}): {reasons or 'none to report'}. The programme's "
            "steps happen on the wall clock while the simulated months pass in minutes, so the days between the "
            "steps, retention after 30, 90 and 180 days and 'active after 90 days' are for a live system "
            "(`catalyst funnel`).",
            "",
        ]
    a = f.adoption
    adoption_rows = [
        (f"colleagues in {a.departments_with} departments with an ambassador", a, "with_ambassadors"),
        (f"people in {a.departments_without} departments without one", a, "without_ambassadors"),
    ]
    lines += [
        "Adoption where ambassadors are (the ambassadors' own activity left out):",
        "",
        "| group | people | active in 7 days | active in 30 days | active days of 30 | median 30-day score |",
        "|---|---|---|---|---|---|",
        *(
            f"| {label} | {_share(getattr(msg, name))} |"
            if msg.HasField(name)
            else f"| {label} | too few to show | | | | |"
            for label, msg, name in adoption_rows
        ),
        "",
        "The plot shows the same at the start of each event-time week recognition went through (weeks its clock "
        "jumped over while the history was replayed have no point) and at the end of the run.",
        "",
        "![adoption](adoption.png)",
        "",
        f"### Managers as role models (groups of at least {m.min_group_size}; no manager is named or ranked)",
        "",
        "| scope | group | people | active in 7 days | active in 30 days | active days of 30 | median 30-day score |",
        "|---|---|---|---|---|---|---|",
    ]
    for d in m.departments:
        scope = d.department_id or "company"
        lines += [f"| {scope} | managers | {_share(d.managers)} |", f"| {scope} | everyone else | {_share(d.others)} |"]
    lines += [
        "",
        f"Too few managers or other employees to compare: {', '.join(m.too_small) or 'none'}; "
        f"{m.small_departments} departments below {m.min_group_size} people are not shown.",
        "",
    ]
    return lines


def emerging_section(emerging: recognition_pb2.ListEmergingResponse, truth: GroundTruth) -> list[str]:
    """The programme owner's emerging list at the end of the run, in counts against the ground truth."""
    ambassadors, gamers = set(truth.ambassadors), set(truth.gamers)
    listed = list(emerging.emerging)
    ids = [e.employee_id for e in listed]
    end = truth.end_date
    month = [e for e in listed if e.HasField("expected_at") and (e.expected_at.ToDatetime().date() - end).days <= 30]
    rows = [
        ("on the list", len(ids)),
        ("meeting the criteria (the confirmation runs)", sum(e.HasField("qualifying_since") for e in listed)),
        ("expected within 30 days", len(month)),
        (
            "without a date (a figure that does not grow with activity)",
            sum(not e.HasField("expected_at") for e in listed),
        ),
        ("genuine ambassadors (ground truth)", sum(e in ambassadors for e in ids)),
        ("gamers (ground truth)", sum(e in gamers for e in ids)),
    ]
    return [
        "## The emerging list",
        "",
        "People on track for the Intranet Ambassador who do not hold it (every criterion at least at its keep "
        "threshold), with their evidence and the date they would meet the criteria: the programme owner's alone "
        "(`catalyst emerging`, a purpose stated and every listed person audited), never announced or shown to "
        "anyone. At the end of the run:",
        "",
        "| | people |",
        "|---|---|",
        *(f"| {label} | {n} |" for label, n in rows),
        "",
    ]


def markdown(
    truth: GroundTruth,
    detection: Detection,
    coverage: recognition_pb2.GetDepartmentCoverageResponse,
    pilot: recognition_pb2.ProposePilotGroupResponse,
    facts: RunFacts,
    policy: Policy,
    shapes: str = "",
    views: Programme | None = None,
) -> str:
    persona = _persona(truth)
    shown = policy.visibility

    def people(ids: list[str]) -> str:
        return ", ".join(f"{e} ({persona.get(e)})" for e in ids) or "none"

    days = list(detection.days_to_detection.values())
    lines = [
        "# Catalyst: ambassadors in a simulated company",
        "",
        f"{len(truth.employees)} employees in {len(truth.departments)} departments; pre-launch from "
        f"{truth.pre_launch_start}, launch {truth.launch_date}, simulated until {truth.end_date} "
        f"({facts.simulated_days} days). {facts.events_sent:,} interactions went through the feed API in "
        f"{facts.wall_seconds:.0f} s; {facts.score_events:,} score updates and the badge events followed.",
        "",
        "## Targets",
        "",
        *[f"- {'PASS' if ok else 'FAIL'}: {name}" for name, ok in verdicts(detection).items()],
        "",
        "## Policy",
        "",
        f"The system ran under the {shown.profile.value} profile (`deploy/config/policy.yaml`): rankings of "
        f"people: {shown.rankings.value}; a colleague's figures: {shown.colleague_scores.value}; no figure about "
        f"a group smaller than {shown.min_group_size}. Every look-up of a person's data by someone else stated a "
        "purpose and was audited.",
        "",
        "## Intranet Ambassador against the ground truth",
        "",
        "| | |",
        "|---|---|",
        f"| precision | {detection.precision:.2f} |",
        f"| recall | {detection.recall:.2f} |",
        f"| genuine ambassadors | {len(truth.ambassadors)} |",
        f"| recognised (true positives) | {len(detection.true_positives)} |",
        f"| recognised but not genuine | {people(detection.false_positives)} |",
        f"| missed | {people(detection.missed)} |",
        f"| days after launch to recognition | median {statistics.median(days) if days else 'n/a'}, "
        f"range {min(days) if days else 'n/a'} to {max(days) if days else 'n/a'} |",
        "",
        "![detection](detection.png)",
        "",
        *(
            [
                "## Other company shapes (offline, the same rules)",
                "",
                "The same pure model path in memory (`python -m services.demo.offline --shapes`), live clock:",
                "",
                shapes,
                "",
            ]
            if shapes
            else []
        ),
        "## Gamers",
        "",
        f"{detection.gamers_total} simulated gamers (reaction rings, self-promoters, react-only accounts); "
        f"{detection.gamers_caught} hold no badge.",
        "",
        *(f"- {g} ({persona.get(g)}) holds {', '.join(b)}" for g, b in detection.gamers_with_badges.items()),
        "",
        "![badges by persona](badges_by_persona.png)",
        "",
        *programme_section(views or Programme(), facts),
        *emerging_section((views or Programme()).emerging, truth),
        "## Department coverage",
        "",
        "Coverage counts only ambassadors who accepted and did not withdraw: nobody is singled out before consenting.",
        "",
        "| department | employees | ambassadors | ratio | target | meets |",
        "|---|---|---|---|---|---|",
        *(
            f"| {d.department_id} | {d.employees} | {d.ambassadors} | {d.ratio:.3f} | {d.target_ratio:.3f} | "
            f"{'yes' if d.meets_target else 'no'} |"
            for d in coverage.departments
        ),
        "",
        f"Departments without an ambassador: {', '.join(coverage.departments_without_ambassador) or 'none'}.",
        "",
        "![coverage](coverage.png)",
        "",
        "## Proposed pilot group",
        "",
        "| employee | department | pilot score | why |",
        "|---|---|---|---|",
        *(f"| {c.employee_id} | {c.department_id} | {c.pilot_score:.1f} | {c.reason} |" for c in pilot.candidates),
        "",
    ]
    return "\n".join(lines)


def write(
    directory: Path,
    truth: GroundTruth,
    detection: Detection,
    coverage: recognition_pb2.GetDepartmentCoverageResponse,
    pilot: recognition_pb2.ProposePilotGroupResponse,
    facts: RunFacts,
    policy: Policy,
    shapes: str = "",
    views: Programme | None = None,
) -> Path:
    views = views or Programme()
    directory.mkdir(parents=True, exist_ok=True)
    plot_detection(detection, truth, directory / "detection.png")
    plot_coverage(coverage, directory / "coverage.png")
    plot_badges_by_persona(detection, directory / "badges_by_persona.png")
    plot_adoption(views.funnel, directory / "adoption.png")
    path = directory / "report.md"
    path.write_text(markdown(truth, detection, coverage, pilot, facts, policy, shapes, views))
    return path
