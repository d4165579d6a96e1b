"""`catalyst` commands of the ambassador programme: the person's choices (answer, volunteer, show a badge) and
the programme owner's work (candidates, the emerging list, declines in aggregate, legitimation, a person's
programme record, pre-launch sessions and their confirmed attendance)."""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime

from catalyst.feed.v1 import prelaunch_pb2 as pre
from catalyst.recognition.v1 import recognition_pb2 as pb
from google.protobuf.json_format import MessageToDict
from rich.console import Console
from rich.table import Table

from services.cli.clients import Caller

AMB = "intranet_ambassador"
COMMANDS = frozenset(
    {
        "answer",
        "volunteer",
        "show-badge",
        "candidates",
        "emerging",
        "declines",
        "legitimate",
        "programme",
        "catalogue",
        "sessions",
        "register-session",
        "confirm-attendance",
        "funnel",
        "manager-activity",
    }
)
SESSION_TYPES = {
    "workshop": pre.SESSION_TYPE_WORKSHOP,
    "interview": pre.SESSION_TYPE_INTERVIEW,
    "survey": pre.SESSION_TYPE_SURVEY,
}


def add_commands(sub: argparse._SubParsersAction) -> None:
    an = sub.add_parser("answer", help="accept or decline your ambassador invitation (as --as)")
    choice = an.add_mutually_exclusive_group(required=True)
    choice.add_argument("--accept", action="store_true")
    choice.add_argument("--decline", action="store_true")
    an.add_argument("--reason-code", default="", help="when declining: a reason of `catalyst catalogue` (aggregate)")
    an.add_argument("--reason", default="", help="when declining: your own words (only you see them)")
    vo = sub.add_parser("volunteer", help="say you would like to be an ambassador (as --as)")
    vo.add_argument("--withdraw", action="store_true", help="withdraw the offer")
    sb = sub.add_parser("show-badge", help="show one of your facet badges to colleagues (as --as)")
    sb.add_argument("badge")
    sb.add_argument("--hide", action="store_true", help="make it private again")
    ca = sub.add_parser("candidates", help="detected candidates beside volunteers, with evidence (programme owner)")
    ca.add_argument("--department", default="")
    em = sub.add_parser(
        "emerging", help="people on track for the ambassador badge, with evidence and expected date (programme owner)"
    )
    em.add_argument("--department", default="")
    sub.add_parser("declines", help="declined invitations and their reasons, in groups of the minimum size")
    le = sub.add_parser("legitimate", help="training, time budget, resources, appreciation for an ambassador")
    le.add_argument("employee")
    what = le.add_mutually_exclusive_group(required=True)
    what.add_argument("--offer-training", metavar="TRAINING")
    what.add_argument("--complete-training", metavar="TRAINING")
    what.add_argument("--time-budget", type=float, metavar="HOURS", help="hours a month; with --manager")
    what.add_argument("--resource", metavar="RESOURCE")
    what.add_argument("--appreciation", metavar="TEXT")
    le.add_argument("--manager", default="", help="the manager who agreed the time budget")
    pr = sub.add_parser("programme", help="a person's part in the programme (yours without an employee)")
    pr.add_argument("employee", nargs="?", default="")
    sub.add_parser("catalogue", help="trainings, resources and decline reasons the programme offers")
    sub.add_parser("funnel", help="detected, accepted, trained, active, lapsed (programme owner, works council)")
    sub.add_parser(
        "manager-activity", help="managers' activity against everyone else's, per department (aggregates only)"
    )
    sub.add_parser("sessions", help="registered pre-launch workshops, interviews and surveys (programme owner)")
    rs = sub.add_parser("register-session", help="register a workshop, interview or survey (programme owner)")
    rs.add_argument("session_id")
    rs.add_argument("--type", required=True, choices=sorted(SESSION_TYPES))
    rs.add_argument("--title", required=True)
    rs.add_argument("--starts", required=True, type=datetime.fromisoformat, help="ISO date or time, e.g. 2026-03-02")
    rs.add_argument("--ends", type=datetime.fromisoformat, help="ISO date or time (default: the start)")
    rs.add_argument("--department", action="append", default=[], help="invited department (repeat; none: all)")
    rs.add_argument("--organiser", default="", help="who confirms attendance (default: you)")
    rs.add_argument("--pre-launch", action="store_true", help="run before the intranet's launch (a pilot signal)")
    co = sub.add_parser("confirm-attendance", help="confirm who attended (the organiser or the programme owner)")
    co.add_argument("session_id")
    co.add_argument("employee")
    co.add_argument("--contributed", action="store_true", help="workshops and interviews: contributed ideas")
    co.add_argument("--answered", type=int, default=0, help="surveys: questions answered")


def session_request(args: argparse.Namespace) -> pre.RegisterSessionRequest:
    session = pre.Session(
        session_id=args.session_id,
        type=SESSION_TYPES[args.type],
        title=args.title,
        department_ids=args.department,
        organiser_id=args.organiser,
        pre_launch=args.pre_launch,
    )
    for name, value in (("starts_at", args.starts), ("ends_at", args.ends)):
        if value is not None:
            getattr(session, name).FromDatetime(value if value.tzinfo else value.replace(tzinfo=UTC))
    return pre.RegisterSessionRequest(session=session)


def legitimation_request(args: argparse.Namespace) -> pb.RecordLegitimationRequest:
    request = pb.RecordLegitimationRequest(employee_id=args.employee)
    if args.offer_training:
        request.offer_training = args.offer_training
    elif args.complete_training:
        request.complete_training = args.complete_training
    elif args.time_budget is not None:
        request.time_budget.hours_per_month = args.time_budget
        request.time_budget.agreed_by_manager = args.manager
    elif args.resource:
        request.grant_resource = args.resource
    else:
        request.appreciation = args.appreciation
    return request


def _progress(console: Console, progress: pb.BadgeProgress) -> None:
    console.print(progress.summary)
    for r in progress.missing:
        console.print(f"  missing: {r.description}")


def candidates(console: Console, response: pb.ListCandidatesResponse) -> None:
    if not response.candidates:
        console.print("No candidates and no volunteers yet.")
        return
    table = Table("employee", "department", "found by", "status", "criteria met", "missing")
    for c in response.candidates:
        found = " + ".join(w for w, on in (("rules", c.detected), ("volunteered", c.volunteered)) if on)
        status = pb.AmbassadorStatus.Name(c.badge.status).removeprefix("AMBASSADOR_STATUS_").lower()
        met = f"{len(c.progress.met)} of {len(c.progress.met) + len(c.progress.missing)}"
        missing = "; ".join(r.description for r in c.progress.missing)
        table.add_row(c.badge.display_name or c.badge.employee_id, c.badge.department_id, found, status, met, missing)
    console.print(table)


def emerging(console: Console, response: pb.ListEmergingResponse) -> None:
    """Soonest first; told to nobody: the person hears of the badge when the rules grant it."""
    if not response.emerging:
        console.print("Nobody is on track for the ambassador badge yet.")
        return
    table = Table("employee", "department", "expected", "criteria met", "how", "missing")
    for e in response.emerging:
        when = e.expected_at.ToDatetime().date().isoformat() if e.HasField("expected_at") else "-"
        met = f"{len(e.progress.met)} of {len(e.progress.met) + len(e.progress.missing)}"
        missing = "; ".join(r.description for r in e.progress.missing)
        table.add_row(e.display_name or e.employee_id, e.department_id, when, met, e.expected, missing)
    console.print(table)
    console.print(f"{len(response.emerging)} on track; not announced to them or anyone else")


def _days(stage: pb.FunnelStage, name: str) -> str:
    return f"{getattr(stage, name):.0f}" if stage.HasField(name) else "-"


def funnel(console: Console, response: pb.GetProgrammeFunnelResponse) -> None:
    if not response.stages:
        console.print(f"No figures: the company has fewer than {response.min_group_size} people")
        return
    table = Table(
        "scope",
        "volunteered (invited)",
        "detected",
        "pending",
        "declined",
        "accepted",
        "trained",
        "active",
        "lapsed",
        "active after 90 d",
        "days to accept / train / lapse",
        title=f"Programme funnel (departments of at least {response.min_group_size} people)",
    )
    for s in response.stages:
        table.add_row(
            s.department_id or "company",
            f"{s.volunteered} ({s.volunteers_invited})",
            *map(str, (s.detected, s.pending, s.declined, s.accepted, s.trained, s.active, s.lapsed)),
            f"{s.active_after_90_days} of {s.accepted_90_days_ago}",
            " / ".join(_days(s, f"median_days_to_{step}") for step in ("accept", "train", "lapse")),
        )
    console.print(table)
    company = response.stages[0]
    if company.lapse_reasons:
        console.print("Why ambassadors lapsed: " + ", ".join(f"{r.reason} {r.count}" for r in company.lapse_reasons))
    for r in company.retention:
        console.print(f"Retention after {r.days} days: {r.retained} of {r.cohort} who accepted that long ago")
    a = response.adoption
    activity(
        console,
        "Adoption where ambassadors are",
        [
            (f"colleagues in {a.departments_with} departments with an ambassador", _group(a, "with_ambassadors")),
            (f"people in {a.departments_without} departments without one", _group(a, "without_ambassadors")),
        ],
    )

    if response.adoption_history:
        history = Table("week", "with an ambassador: active 30 d", "without: active 30 d", title="Adoption over time")
        for w in response.adoption_history:
            shares = [_group(w.adoption, name) for name in ("with_ambassadors", "without_ambassadors")]
            history.add_row(w.week, *(f"{g.active_30d_share:.0%}" if g else "-" for g in shares))
        console.print(history)


def _group(message: pb.AdoptionByCoverage | pb.ManagerActivity, name: str) -> pb.GroupActivity | None:
    return getattr(message, name) if message.HasField(name) else None


def activity(console: Console, title: str, groups: list[tuple[str, pb.GroupActivity | None]]) -> None:
    """Rows of group activity; a group below the minimum group size (None) is shown as too small."""
    table = Table(
        "group",
        "people",
        "active 7 d",
        "active 30 d",
        "active days / 30",
        "active weeks / 12",
        "median 30-day score",
        title=title,
    )
    for label, g in groups:
        if g is None:
            table.add_row(label, "too few to show", *[""] * 5)
            continue
        table.add_row(
            label,
            str(g.people),
            f"{g.active_7d_share:.0%}",
            f"{g.active_30d_share:.0%}",
            f"{g.mean_active_days_30d:.1f}",
            f"{g.mean_active_weeks_12w:.1f}",
            f"{g.median_score_30d:.1f}",
        )
    console.print(table)


def manager_activity(console: Console, response: pb.GetManagerActivityResponse) -> None:
    groups: list[tuple[str, pb.GroupActivity | None]] = []
    for d in response.departments:
        scope = d.department_id or "company"
        groups += [(f"{scope}: managers", d.managers), (f"{scope}: everyone else", d.others)]
    if groups:
        activity(console, f"Managers as role models (groups of at least {response.min_group_size})", groups)
    else:
        console.print(f"No figures: fewer than {response.min_group_size} managers or other employees")
    if response.too_small:
        console.print(f"Too few managers or other employees to compare: {', '.join(response.too_small)}")
    if response.small_departments:
        console.print(f"{response.small_departments} departments below {response.min_group_size} people are not shown")


def run(args: argparse.Namespace, caller: Caller, console: Console) -> None:
    match args.command:
        case "answer":
            request = pb.RespondToInvitationRequest(
                badge=AMB, accept=args.accept, reason=args.reason, reason_code=args.reason_code
            )
            caller.call("recognition", "RespondToInvitation", request)
            console.print("Accepted: welcome to the programme" if args.accept else "Declined; you may change your mind")
        case "volunteer":
            response = caller.call("recognition", "Volunteer", pb.VolunteerRequest(withdraw=args.withdraw))
            if not response.volunteering:
                console.print("Your offer is withdrawn")
            elif response.status:
                console.print("Thank you: you meet the criteria and hold the ambassador invitation (catalyst answer)")
            else:
                console.print("Thank you: the programme owner sees your offer. What is still missing:")
                _progress(console, response.progress)
        case "show-badge":
            request = pb.SetBadgeShownRequest(badge=args.badge, shown=not args.hide)
            shown = caller.call("recognition", "SetBadgeShown", request).shown_badges
            console.print(f"Shown to colleagues: {', '.join(shown) or 'none of your facet badges'}")
        case "candidates":
            request = pb.ListCandidatesRequest(department_id=args.department)
            candidates(console, caller.call("recognition", "ListCandidates", request))
        case "emerging":
            request = pb.ListEmergingRequest(department_id=args.department)
            emerging(console, caller.call("recognition", "ListEmerging", request))
        case "declines":
            s = caller.call("recognition", "SummariseDeclines", pb.SummariseDeclinesRequest())
            if not s.declined:
                console.print(f"Fewer than {s.min_group_size} people declined: nothing is reported")
            else:
                console.print(f"{s.declined} people declined")
                for r in s.reasons:
                    console.print(f"  {r.reason_code}: {r.count}")
                if s.suppressed:
                    console.print(f"  (reasons given by fewer than {s.min_group_size} people are left out)")
        case "legitimate":
            caller.call("recognition", "RecordLegitimation", legitimation_request(args))
            console.print(f"Recorded for {args.employee}")
        case "programme":
            response = caller.call("recognition", "GetProgramme", pb.GetProgrammeRequest(employee_id=args.employee))
            print(json.dumps(MessageToDict(response.programme, preserving_proto_field_name=True), indent=2))
        case "funnel":
            funnel(console, caller.call("recognition", "GetProgrammeFunnel", pb.GetProgrammeFunnelRequest()))
        case "manager-activity":
            request = pb.GetManagerActivityRequest()
            manager_activity(console, caller.call("recognition", "GetManagerActivity", request))
        case "sessions":
            for s in caller.call("prelaunch", "ListSessions", pre.ListSessionsRequest()).sessions:
                kind = pre.SessionType.Name(s.type).removeprefix("SESSION_TYPE_").lower()
                when = s.starts_at.ToDatetime().date().isoformat()
                departments = ", ".join(s.department_ids) or "all departments"
                console.print(
                    f"{s.session_id}: {kind} '{s.title}' on {when} for {departments}, organiser {s.organiser_id}"
                )
        case "register-session":
            caller.call("prelaunch", "RegisterSession", session_request(args))
            console.print(f"Registered {args.session_id}")
        case "confirm-attendance":
            request = pre.ConfirmAttendanceRequest(
                session_id=args.session_id,
                employee_id=args.employee,
                contributed=args.contributed,
                answered_questions=args.answered,
            )
            recorded = caller.call("prelaunch", "ConfirmAttendance", request).recorded
            console.print(f"Confirmed {args.employee} at {args.session_id}" + ("" if recorded else " (already)"))
        case "catalogue":
            response = caller.call("recognition", "GetCatalogue", pb.GetCatalogueRequest())
            print(json.dumps(MessageToDict(response, preserving_proto_field_name=True), indent=2))
