"""`catalyst`: the command line for comms/HR people and operators."""

from __future__ import annotations

import argparse
import json
import sys

from catalyst.audit.v1 import audit_pb2
from catalyst.engagement.v1 import engagement_pb2
from catalyst.recognition.v1 import recognition_pb2
from rich.console import Console

from services.cli import calibration, history_import, privacy, programme, render
from services.cli.clients import Caller, CliError
from services.cli.config import CliSettings
from services.common.auth import Role
from services.common.local_issuer import local_issuer
from services.common.settings import load
from services.engagement.api import queries
from services.engagement.model.config import load_model


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="catalyst", description="Find, recognise and support intranet ambassadors.")
    p.add_argument("--as", dest="subject", default="cli-programme-owner", help="employee id to act as (minted token)")
    p.add_argument(
        "--role", default=Role.PROGRAMME_OWNER.value, choices=[r.value for r in Role], help="role of the minted token"
    )
    p.add_argument("--purpose", default="", help="why you look at someone else's data (audited; required then)")
    sub = p.add_subparsers(dest="command", required=True)

    t = sub.add_parser("token", help="mint a bearer token for local use and demos")
    t.add_argument("subject")
    t.add_argument("--token-role", default="employee", choices=[r.value for r in Role])
    t.add_argument("--ttl", type=int, default=3600, help="seconds")

    model = load_model()
    lb = sub.add_parser("leaderboard", help="people who opted in to ranking (only where the policy has rankings)")
    lb.add_argument("--department", default="")
    lb.add_argument(
        "--window",
        default=queries.default_board_window(model),
        choices=model.leaderboards.windows,
        help="only windows that resist a burst have a board (leaderboards.windows in the scoring file)",
    )
    lb.add_argument("--component", default="")
    lb.add_argument("--limit", type=int, default=20)

    ex = sub.add_parser("explain", help="why an employee has their score")
    ex.add_argument("employee")
    ex.add_argument("--window", default=queries.default_window(model), choices=model.window_names)

    b = sub.add_parser("badges", help="an employee's badges with evidence")
    b.add_argument("employee")
    pr = sub.add_parser("progress", help="what an employee still needs for the next badge")
    pr.add_argument("employee")
    am = sub.add_parser("ambassadors", help="Intranet Ambassadors and their status")
    am.add_argument("--department", default="")
    sub.add_parser("coverage", help="ambassadors per department against the target ratio")
    ad = sub.add_parser("adoption", help="department adoption (small groups hidden)")
    ad.add_argument("--department", default="")
    pg = sub.add_parser("pilot-group", help="propose a pilot group covering every department")
    pg.add_argument("--size", type=int, default=24)
    en = sub.add_parser("endorse", help="endorse a badge holder (programme owner)")
    en.add_argument("employee")
    en.add_argument("--badge", default="intranet_ambassador")
    en.add_argument("--note", required=True)
    sub.add_parser("my-accesses", help="who looked at your data (as --as), and why")
    sub.add_parser("my-data", help="everything Catalyst stores about you (as --as), as one JSON document")
    er = sub.add_parser("erase", help="erase a leaver from every service (HR: --role hr)")
    er.add_argument("employee")
    er.add_argument("--reason", required=True, help="why, e.g. 'left on 2026-03-31' (kept with the audit)")
    au = sub.add_parser("audit", help="the audit log of look-ups (works council: --role works_council)")
    au.add_argument("--employee", default="", help="only look-ups of this person's data")
    au.add_argument("--actor", default="", help="only look-ups by this person")
    au.add_argument("--summary", action="store_true", help="counts per role, method and purpose instead")
    programme.add_commands(sub)
    calibration.add_commands(sub)
    history_import.add_commands(sub)
    return p


def run(args: argparse.Namespace, settings: CliSettings, console: Console) -> int:
    """Runs one command; returns its exit code."""
    caller = Caller(settings, args.subject, Role(args.role), args.purpose.strip())
    match args.command:
        case "import":
            send, close = history_import.grpc_sender(settings)
            try:
                return history_import.import_history(args, send, console)
            finally:
                close()
        case command if command in programme.COMMANDS:
            programme.run(args, caller, console)
        case command if command in calibration.COMMANDS:
            calibration.run(args, caller, console)
        case "token":
            print(local_issuer(settings).mint(args.subject, [Role(args.token_role)], ttl_seconds=args.ttl))
        case "leaderboard":
            request = engagement_pb2.GetLeaderboardRequest(
                department_id=args.department, window=args.window, component=args.component, page_size=args.limit
            )
            render.leaderboard(console, caller.call("engagement", "GetLeaderboard", request), request)
        case "explain":
            request = engagement_pb2.ExplainScoreRequest(employee_id=args.employee, window=args.window)
            render.explanation(console, caller.call("engagement", "ExplainScore", request))
        case "badges":
            request = recognition_pb2.GetBadgesRequest(employee_id=args.employee)
            render.badges(console, caller.call("recognition", "GetBadges", request), args.employee)
        case "progress":
            request = recognition_pb2.GetProgressRequest(employee_id=args.employee)
            render.progress(console, caller.call("recognition", "GetProgress", request))
        case "ambassadors":
            request = recognition_pb2.ListAmbassadorsRequest(department_id=args.department)
            render.ambassadors(console, caller.call("recognition", "ListAmbassadors", request), args.department)
        case "coverage":
            request = recognition_pb2.GetDepartmentCoverageRequest()
            render.coverage(console, caller.call("recognition", "GetDepartmentCoverage", request))
        case "adoption":
            request = engagement_pb2.GetDepartmentAdoptionRequest(department_id=args.department)
            render.adoption(console, caller.call("engagement", "GetDepartmentAdoption", request), args.department)
        case "pilot-group":
            request = recognition_pb2.ProposePilotGroupRequest(size=args.size)
            render.pilot_group(console, caller.call("recognition", "ProposePilotGroup", request))
        case "my-data":
            print(json.dumps(privacy.my_data(caller), indent=2, ensure_ascii=False))
        case "erase":
            privacy.erase(caller, args.employee, args.reason)
            console.print(f"Erased {args.employee}: every service deletes what it holds about them")
        case "my-accesses":
            render.accesses(console, caller.call("audit", "ListMyAccesses", audit_pb2.ListMyAccessesRequest()))
        case "audit" if args.summary:
            render.access_summary(
                console, caller.call("audit", "SummariseAccesses", audit_pb2.SummariseAccessesRequest())
            )
        case "audit":
            request = audit_pb2.ListAccessesRequest(employee_id=args.employee, actor=args.actor)
            render.accesses(console, caller.call("audit", "ListAccesses", request))
        case "endorse":
            request = recognition_pb2.EndorseRequest(employee_id=args.employee, badge=args.badge, note=args.note)
            response = caller.call("recognition", "Endorse", request)
            console.print(f"Endorsed {response.badge.employee_id} as {response.badge.badge}: {args.note}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    console = Console()
    try:
        return run(args, load(CliSettings), console)
    except CliError as exc:
        Console(stderr=True).print(f"[red]error:[/] {exc}")
        return 2


if __name__ == "__main__":
    sys.exit(main())
