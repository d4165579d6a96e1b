"""Turns service answers into tables and sentences for people."""

from __future__ import annotations

from catalyst.audit.v1 import audit_pb2
from catalyst.engagement.v1 import engagement_pb2
from catalyst.events.v1 import badges_pb2
from catalyst.recognition.v1 import recognition_pb2
from rich.console import Console
from rich.table import Table

# What fills an empty table on a fresh system, said where a table has no rows.
LOAD_HINT = (
    "import the directory (`python -m services.feed.import_directory FILE`) and let activity reach the feed; "
    "on a local system `make seed` loads a sample company"
)


def show(console: Console, table: Table, empty: str) -> None:
    """Prints the table, or, when it has no rows, why it is empty and what to do next instead."""
    console.print(table if table.row_count else empty)


def in_department(department: str) -> str:
    """Names the department a command was narrowed to, in the sentences about empty tables."""
    return f" in {department}" if department else ""


def evidence_text(ev: badges_pb2.Evidence) -> str:
    """The rules' own sentence (it carries the figure and the threshold), or the bare numbers."""
    return ev.description or f"{ev.signal}: {ev.value:g} (threshold {ev.threshold:g})"


def tier_name(tier: int) -> str:
    name = badges_pb2.Tier.Name(tier).removeprefix("TIER_").lower()
    return "" if name in ("single", "unspecified") else name


def status_name(status: int) -> str:
    return recognition_pb2.AmbassadorStatus.Name(status).removeprefix("AMBASSADOR_STATUS_").lower()


def leaderboard(
    console: Console, response: engagement_pb2.GetLeaderboardResponse, request: engagement_pb2.GetLeaderboardRequest
) -> None:
    department = request.department_id
    table = Table(title=f"Leaderboard {request.window} {request.component or 'total'} {department or 'company'}")
    for column in ("rank", "employee", "department", "score"):
        table.add_column(column, justify="right" if column in ("rank", "score") else "left")
    for e in response.entries:
        table.add_row(str(e.rank), e.employee_id, e.department_id, f"{e.score:.1f}")
    show(
        console,
        table,
        f"no scores to rank{in_department(department)} in the {request.window} window: scores come from activity "
        f"in the feed, and people who opted out of rankings are left out; {LOAD_HINT}",
    )


def explanation(console: Console, response: engagement_pb2.ExplainScoreResponse) -> None:
    console.print(f"[bold]{response.employee_id}[/] — {response.window} total {response.total:.1f}")
    table = Table()
    for column in ("component", "activity", "count", "points", "why"):
        table.add_column(column)
    for c in response.contributions:
        table.add_row(c.component, c.activity, f"{c.count:g}", f"{c.points:.1f}", c.description)
    show(
        console,
        table,
        f"no scored activity of {response.employee_id} in the {response.window} window; a longer one reaches "
        f"further back (`catalyst explain {response.employee_id} --window 100d`)",
    )
    for note in response.notes:
        console.print(f"• {note}")


def badges(console: Console, response: recognition_pb2.GetBadgesResponse, employee: str) -> None:
    if not response.badges and not response.revoked:
        console.print(
            f"{employee} holds no badges yet: badges follow weeks of sustained activity; "
            "`catalyst progress` shows the person what is still missing"
        )
    for b in response.badges:
        extra = []
        if b.badge == "intranet_ambassador" or b.status:
            extra.append(status_name(b.status))
        if b.endorsed:
            extra.append(f"endorsed: {b.endorsement_note}")
        if b.HasField("at_risk_since"):
            extra.append("at risk")
        console.print(f"[bold]{b.badge}[/] {tier_name(b.tier)} {'(' + ', '.join(extra) + ')' if extra else ''}")
        for ev in b.evidence:
            console.print(f"    {evidence_text(ev)}")
    for b in response.revoked:
        console.print(f"[dim]lost {b.badge} {tier_name(b.tier)}[/]")
        for ev in b.evidence:
            console.print(f"    [dim]{evidence_text(ev)}[/]")


def progress(console: Console, response: recognition_pb2.GetProgressResponse) -> None:
    for p in response.progress:
        console.print(f"[bold]{p.badge}[/] {tier_name(p.next_tier)}: {p.summary}")
        for r in p.missing:
            console.print(f"    missing  {r.description or r.signal}: {r.current:g} of {r.required:g}")
        for r in p.met:
            console.print(f"    [green]met[/]      {r.description or r.signal}: {r.current:g} of {r.required:g}")


def ambassadors(console: Console, response: recognition_pb2.ListAmbassadorsResponse, department: str) -> None:
    table = Table(title="Intranet Ambassadors")
    for column in ("employee", "name", "status", "endorsed"):
        table.add_column(column)
    for b in response.ambassadors:
        table.add_row(b.employee_id, b.display_name, status_name(b.status), "yes" if b.endorsed else "")
    show(
        console,
        table,
        f"no Intranet Ambassadors{in_department(department)} yet: the badge takes weeks of "
        "sustained, helpful activity (deploy/config/badges.yaml), and only comms/HR see invitations not yet "
        f"accepted. `catalyst leaderboard` shows who is most engaged; {LOAD_HINT}",
    )


def coverage(console: Console, response: recognition_pb2.GetDepartmentCoverageResponse) -> None:
    table = Table(title="Ambassador coverage by department")
    for column in ("department", "employees", "ambassadors", "ratio", "target", "meets"):
        table.add_column(column)
    for d in response.departments:
        table.add_row(
            d.department_id,
            str(d.employees),
            str(d.ambassadors),
            f"{d.ratio:.3f}",
            f"{d.target_ratio:.3f}",
            "yes" if d.meets_target else "[red]no[/]",
        )
    show(
        console,
        table,
        f"no departments to show: coverage counts the people of the directory and hides departments below the "
        f"minimum group size; {LOAD_HINT}",
    )
    if response.departments_without_ambassador:
        console.print("Departments without an ambassador: " + ", ".join(response.departments_without_ambassador))


def pilot_group(console: Console, response: recognition_pb2.ProposePilotGroupResponse) -> None:
    table = Table(title="Proposed pilot group")
    for column in ("employee", "department", "pilot score", "why"):
        table.add_column(column)
    for c in response.candidates:
        table.add_row(c.employee_id, c.department_id, f"{c.pilot_score:.1f}", c.reason)
    show(
        console,
        table,
        "no pilot candidates yet: the pilot group is proposed from pre-launch surveys, workshops and interviews "
        f"recorded through the feed, and none is recorded; {LOAD_HINT}",
    )
    for u in response.uncovered_departments:
        console.print(f"not covered: {u.department_id} ({u.employees} employees): {u.reason}")
    if response.small_departments_uncovered:
        console.print(f"not covered: {response.small_departments_uncovered} departments below the minimum group size")


def adoption(console: Console, response: engagement_pb2.GetDepartmentAdoptionResponse, department: str) -> None:
    table = Table(title=f"Department adoption (hidden below {response.minimum_group_size} people)")
    for column in ("department", "employees", "active 7d", "active 30d", "rate 30d", "trend 7d"):
        table.add_column(column)
    for d in response.departments:
        if d.hidden:
            table.add_row(d.department_id, "", "hidden", "", "", "")
        else:
            table.add_row(
                d.department_id,
                str(d.employees),
                str(d.active_7d),
                str(d.active_30d),
                f"{d.engagement_rate_30d:.0%}",
                f"{d.trend_7d:+.0%}",
            )
    show(
        console,
        table,
        f"no departments to show{in_department(department)}: adoption counts the people of the directory; {LOAD_HINT}",
    )


def accesses(console: Console, response: audit_pb2.ListAccessesResponse | audit_pb2.ListMyAccessesResponse) -> None:
    table = Table(title="Look-ups of personal data (newest first)")
    for column in ("when (UTC)", "whose", "who", "roles", "what", "purpose"):
        table.add_column(column)
    for env in response.accesses:
        access = env.data_accessed
        table.add_row(
            env.occurred_at.ToDatetime().strftime("%Y-%m-%d %H:%M:%S"),
            env.employee_id,
            access.actor,
            ", ".join(access.actor_roles),
            access.method.rpartition("/")[2],
            access.purpose,
        )
    show(console, table, "Nobody else looked at this data within the audit's retention.")


def access_summary(console: Console, response: audit_pb2.SummariseAccessesResponse) -> None:
    table = Table(title=f"Look-ups by role, method and purpose ({response.total_accesses} in all)")
    for column in ("roles", "what", "purpose", "look-ups", "people", "actors"):
        table.add_column(column)
    for c in response.counts:
        table.add_row(
            c.actor_role, c.method.rpartition("/")[2], c.purpose, str(c.accesses), str(c.people), str(c.actors)
        )
    show(console, table, "No look-ups of personal data within the audit's retention.")
