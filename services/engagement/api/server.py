"""The EngagementService (scores, explanations, leaderboards, department adoption, ranking preference), read
straight from the engagement state in Redis, and its composition root.

Every figure is computed as of the global event-time watermark, so inactive people decay even before the
publisher re-publishes them. The caller always comes from the bearer token; a look-up of someone else's score
or explanation states a purpose and is audited before it is answered (common/audit.py).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import grpc
from catalyst.engagement.v1 import engagement_pb2, engagement_pb2_grpc
from catalyst.events.v1 import scores_pb2
from google.protobuf.timestamp_pb2 import Timestamp
from prometheus_client import REGISTRY, CollectorRegistry

from services.common.audit import Auditor, KafkaAuditLog
from services.common.auth import Principal, Role, current_principal, verifier_for
from services.common.errors import FailedPrecondition, InvalidArgument, NotFound, PermissionDenied
from services.common.grpc_server import GrpcService, run_until_signalled, serve_metrics
from services.common.policy import VisibilityPolicy, load_policy
from services.engagement.adapters.redis_store import RedisStore
from services.engagement.api import boards, queries
from services.engagement.api.settings import EngagementApiSettings
from services.engagement.model.config import ScoringModel, load_model
from services.engagement.model.figures import TOTAL, explain, figures, iso_date
from services.engagement.model.state import DAY_MS, State, pseudonym, set_pseudonym_key

log = logging.getLogger(__name__)
SERVICE_NAME = engagement_pb2.DESCRIPTOR.services_by_name["EngagementService"].full_name
MAX_ID = 128
Page = tuple[list[tuple[str, float]], dict[str, tuple[str, str]], int, bool]  # rows, names, offset, more


def _timestamp(ms: int) -> Timestamp:
    ts = Timestamp()
    ts.FromMilliseconds(ms)
    return ts


def _checked_id(value: str, field: str) -> str:
    if len(value) > MAX_ID:
        raise InvalidArgument(field, f"is longer than {MAX_ID} characters")
    return value


def _employee(request_id: str, caller: Principal) -> str:
    return _checked_id(request_id.strip() or caller.subject, "employee_id")


class EngagementServicer(engagement_pb2_grpc.EngagementServiceServicer):
    def __init__(
        self,
        store: RedisStore,
        model: ScoringModel,
        settings: EngagementApiSettings,
        auditor: Auditor,
        policy: VisibilityPolicy,
    ) -> None:
        self.store = store
        self.model = model
        self.settings = settings
        self.audit = auditor
        self.policy = policy

    def register(self, server: grpc.aio.Server) -> None:
        engagement_pb2_grpc.add_EngagementServiceServicer_to_server(self, server)

    async def _state(self, employee: str, caller: Principal) -> tuple[State, queries.Visibility]:
        state = await self.store.read_state(employee)
        if queries.recorded(state):
            visibility = queries.score_visibility(caller, employee, state.opted_in, self.policy)
            if visibility is not queries.Visibility.NONE:
                return state, visibility
        if queries.score_visibility(caller, employee, False, self.policy) is queries.Visibility.FULL:
            raise NotFound(f"no engagement figures for employee {employee!r} (no recorded activity)")
        # the same answer for unknown and private, so it tells nothing about an opted-out colleague
        raise NotFound(f"no score to show for {employee!r}: unknown employee, or they keep their score private")

    async def GetScore(self, request: engagement_pb2.GetScoreRequest, context: Any) -> engagement_pb2.GetScoreResponse:
        caller = current_principal()
        employee = _employee(request.employee_id, caller)
        purpose = self.audit.purpose(caller, [employee], context.invocation_metadata())
        state, visibility = await self._state(employee, caller)
        await self.audit.record(caller, [employee], f"{SERVICE_NAME}/GetScore", purpose)
        watermark = await self.store.watermark()
        day = queries.as_of_day(state, watermark)
        figs = figures(state, day, self.model)
        full = visibility is queries.Visibility.FULL
        return engagement_pb2.GetScoreResponse(
            employee_id=employee,
            department_id=state.department,
            display_name=state.name,
            windows={w: scores_pb2.ComponentScores(**s) for w, s in figs.windows.items()},
            signals=figs.signals if full else {},
            ranking_opt_out=state.opt_out if full else False,
            as_of=_timestamp(queries.as_of_ms(day, watermark)),
        )

    async def ExplainScore(
        self, request: engagement_pb2.ExplainScoreRequest, context: Any
    ) -> engagement_pb2.ExplainScoreResponse:
        caller = current_principal()
        employee = _employee(request.employee_id, caller)
        window = queries.check_window(request.window, self.model)
        if not queries.may_explain(caller, employee):
            raise PermissionDenied("a score is explained only to the employee themself and to the programme_owner role")
        purpose = self.audit.purpose(caller, [employee], context.invocation_metadata())
        state, _ = await self._state(employee, caller)
        await self.audit.record(caller, [employee], f"{SERVICE_NAME}/ExplainScore", purpose)
        watermark = await self.store.watermark()
        day = queries.as_of_day(state, watermark)
        result = explain(state, day, self.model, window)
        return engagement_pb2.ExplainScoreResponse(
            employee_id=employee,
            window=window,
            total=result.scores[TOTAL],
            contributions=[
                engagement_pb2.Contribution(
                    component=c.component,
                    activity=c.activity,
                    count=c.count,
                    points=c.points,
                    description=c.description,
                )
                for c in result.contributions
            ],
            notes=result.notes,
            scores=scores_pb2.ComponentScores(**result.scores),
            as_of=_timestamp(queries.as_of_ms(day, watermark)),
        )

    async def GetLeaderboard(
        self, request: engagement_pb2.GetLeaderboardRequest, context: Any
    ) -> engagement_pb2.GetLeaderboardResponse:
        current_principal()
        queries.require_rankings(self.policy)
        window = queries.check_board_window(request.window, self.model)
        component = queries.check_component(request.component)
        s = self.settings
        size = queries.check_page_size(request.page_size, s.page_size_default, s.page_size_max)
        department = _checked_id(request.department_id.strip(), "department_id")
        board = queries.board_key(window, department, component)
        cursor = queries.decode_token(request.page_token, board)
        if department and (await self.store.department_sizes([department]))[department] < self.policy.min_group_size:
            return engagement_pb2.GetLeaderboardResponse(hidden=True)
        if component == TOTAL:
            rows, names, offset, more = await self._indexed_page(window, department, cursor.offset, size)
        else:
            rows, names, offset, more = await self._computed_page(window, department, component, cursor.offset, size)
        ranked, after = queries.rank_entries(rows, cursor)
        entries = [
            engagement_pb2.LeaderboardEntry(
                rank=r.rank,
                employee_id=r.employee_id,
                department_id=names[r.employee_id][0],
                display_name=names[r.employee_id][1],
                score=r.score,
            )
            for r in ranked
        ]
        token = ""
        if more:
            token = queries.encode_token(board, queries.Cursor(offset, after.shown, after.rank, after.score))
        return engagement_pb2.GetLeaderboardResponse(entries=entries, next_page_token=token)

    async def _indexed_page(self, window: str, department: str, offset: int, size: int) -> Page:
        """A page from the publisher's index, skipping anyone opted out, forgotten or moved meanwhile."""
        rows: list[tuple[str, float]] = []
        names: dict[str, tuple[str, str]] = {}
        fetch = size + 10
        while len(rows) < size:
            raw = await self.store.board(window, department, offset, fetch)
            if not raw:
                break
            states = await self.store.read_states([e for e, _ in raw])
            for employee, score in raw:
                offset += 1
                state = states[employee]
                if state is not None and state.opted_in and (not department or state.department == department):
                    rows.append((employee, score))
                    names[employee] = (state.department, state.name)
                    if len(rows) == size:
                        break
            if len(raw) < fetch:
                break
        more = offset < await self.store.board_size(window, department)
        return rows, names, offset, more

    async def _computed_page(self, window: str, department: str, component: str, offset: int, size: int) -> Page:
        """A board by component, computed from the state of the board's members."""
        if department:
            members = await self.store.members(department)
        else:
            members = await boards.everyone(self.store, self.model.leaderboards.windows)
        limit = self.settings.component_rank_max_employees
        if len(members) > limit:
            raise FailedPrecondition(
                f"ranking by {component} is computed on request and limited to {limit} employees; "
                f"this board has {len(members)}: choose a department, or rank by total"
            )
        states = {
            e: st
            for e, st in (await self.store.read_states(members)).items()
            if queries.recorded(st) and (not department or st.department == department)
        }
        watermark = await self.store.watermark()
        board = queries.component_board(states, watermark, self.model, window, component)
        rows = board[offset : offset + size]
        names = {e: (states[e].department, states[e].name) for e, _ in rows}
        end = offset + len(rows)
        return rows, names, end, end < len(board)

    async def GetDepartmentAdoption(
        self, request: engagement_pb2.GetDepartmentAdoptionRequest, context: Any
    ) -> engagement_pb2.GetDepartmentAdoptionResponse:
        current_principal()
        department = _checked_id(request.department_id.strip(), "department_id")
        departments = [department] if department else await self.store.departments()
        watermark = await self.store.watermark()
        day = watermark // DAY_MS
        minimum = self.policy.min_group_size
        sizes = await self.store.department_sizes(departments)
        out = []
        for d in departments:
            if sizes[d] < minimum:
                figures_ = queries.adoption(d, set(), set(), set(), set(), minimum)
            else:
                members = {pseudonym(m) for m in await self.store.members(d)}  # day sets hold pseudonyms
                last7 = await self.store.department_activity(d, day - 6, day)
                previous7 = await self.store.department_activity(d, day - 13, day - 7)
                last30 = await self.store.department_activity(d, day - 29, day)
                figures_ = queries.adoption(d, members, last7, previous7, last30, minimum)
            out.append(
                engagement_pb2.DepartmentAdoption(
                    department_id=figures_.department_id,
                    employees=figures_.employees,
                    hidden=figures_.hidden,
                    active_7d=figures_.active_7d,
                    active_30d=figures_.active_30d,
                    active_previous_7d=figures_.active_previous_7d,
                    engagement_rate_30d=figures_.engagement_rate_30d,
                    trend_7d=figures_.trend_7d,
                )
            )
        return engagement_pb2.GetDepartmentAdoptionResponse(
            departments=out, minimum_group_size=minimum, as_of=_timestamp(watermark)
        )

    async def SetRankingPreference(
        self, request: engagement_pb2.SetRankingPreferenceRequest, context: Any
    ) -> engagement_pb2.SetRankingPreferenceResponse:
        caller = current_principal()
        caller.require(Role.EMPLOYEE, Role.PROGRAMME_OWNER, Role.HR)
        employee = caller.subject
        if not await self.store.set_opt_out(employee, request.opt_out):
            raise NotFound("your engagement data was erased at your request; there is no ranking to opt out of")
        state = await self.store.read_state(employee)
        if state is not None and state.top >= 0 and self.policy.ranked(True):
            totals = None
            if not request.opt_out:
                totals = queries.board_totals(state, await self.store.watermark(), self.model)
            await boards.reindex(self.store, employee, state.department, self.model.leaderboards.windows, totals)
        log.info("ranking preference set", extra={"employee_id": employee, "opt_out": request.opt_out})
        return engagement_pb2.SetRankingPreferenceResponse(opt_out=request.opt_out)

    async def GetMyData(
        self, request: engagement_pb2.GetMyDataRequest, context: Any
    ) -> engagement_pb2.GetMyDataResponse:
        """Only ever the caller's own: no purpose, no audit entry."""
        employee = _checked_id(current_principal().subject, "subject")
        state = await self.store.read_state(employee)
        if state is None:
            return engagement_pb2.GetMyDataResponse(employee_id=employee)
        days = sorted({*state.daily, *state.paired})
        return engagement_pb2.GetMyDataResponse(
            employee_id=employee,
            days=[
                engagement_pb2.StoredDay(
                    date=iso_date(day),
                    counts=state.daily.get(day, {}),
                    keyed={
                        counter: engagement_pb2.KeyedCounts(counts=per)
                        for counter, per in state.paired.get(day, {}).items()
                    },
                )
                for day in days
            ],
            totals=state.totals,
            latest=state.latest,
            ranking_choice="opted_out" if state.opt_out else "opted_in" if state.opted_in else "",
            changes=state.changes,
        )


@dataclass
class EngagementApi:
    """One query-API process: `start()` and `stop()` are what SIGTERM handling calls."""

    settings: EngagementApiSettings
    grpc: GrpcService
    store: RedisStore
    audit_log: KafkaAuditLog

    @property
    def port(self) -> int:
        return self.grpc.port

    async def start(self) -> None:
        await self.grpc.start()

    async def stop(self) -> None:
        await self.grpc.stop(self.settings.shutdown_grace_seconds)
        await self.audit_log.close()
        await self.store.redis.aclose()


def build(settings: EngagementApiSettings, registry: CollectorRegistry = REGISTRY) -> EngagementApi:
    model = load_model(settings.scoring_file)
    set_pseudonym_key(settings.pseudonym_key)
    store = RedisStore.connected(settings, model.keep_days)
    service = GrpcService("engagement-api", verifier_for(settings), settings.grpc_host, settings.grpc_port, registry)
    audit_log = KafkaAuditLog(settings.kafka_bootstrap, settings.topic_audit, "catalyst-engagement-api-audit")
    auditor = Auditor(audit_log, "engagement-api")
    policy = load_policy(settings.policy_file).visibility
    service.add(SERVICE_NAME, EngagementServicer(store, model, settings, auditor, policy).register)
    return EngagementApi(settings, service, store, audit_log)


async def serve(settings: EngagementApiSettings) -> None:
    api = build(settings)
    serve_metrics(settings.metrics_host, settings.metrics_port)
    log.info("engagement api starting", extra={"grpc_port": api.port, "metrics_port": settings.metrics_port})
    await run_until_signalled([api.start], [api.stop])
