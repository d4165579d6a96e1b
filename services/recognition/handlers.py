"""Use cases of the recognition service: each reads a record, decides (pure), and commits atomically.

Every write is compare-and-set on the record's revision, retried on conflict, so the consumer and gRPC
calls may touch the same employee concurrently without losing either change.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from catalyst.events.v1 import badges_pb2, envelope_pb2

from services.common.errors import InvalidArgument, NotFound, Unavailable
from services.common.policy import WORKS_COUNCIL_MIN_GROUP
from services.engagement.model.config import COMPONENTS, TOTAL
from services.engagement.model.distribution import Distribution
from services.engagement.model.figures import flatten
from services.recognition import emerging, events, insights, model, programme
from services.recognition.calibration import Calibration
from services.recognition.calibrator import Calibrator
from services.recognition.metrics import RecognitionMetrics
from services.recognition.model import EmployeeRecord
from services.recognition.programme import Catalogue, DeclineSummary, FunnelRow, Journey, Legitimation
from services.recognition.rules import Action, Decision, Holding, ProgressView, Rules, evaluate, progress
from services.recognition.store import Commit, RecognitionStore

log = logging.getLogger(__name__)

Change = tuple[EmployeeRecord, list[envelope_pb2.Envelope]] | None


class Erased(NotFound):
    """The employee was erased; nothing about them is stored again (until a later registration)."""

    def __init__(self, employee_id: str) -> None:
        super().__init__(f"{employee_id} was erased; recognition stores nothing about them")


def utc(ts: datetime) -> datetime:
    return ts if ts.tzinfo else ts.replace(tzinfo=UTC)


@dataclass(frozen=True)
class PilotPick:
    record: EmployeeRecord
    score: float
    activities: float
    reason: str


@dataclass(frozen=True)
class Uncovered:
    """A department the pilot group cannot cover, and why (one reason for every case, so it reveals nobody's
    choice: no confirmed pre-launch activity, or only from people who opted out)."""

    department: str
    employees: int
    reason: str


@dataclass(frozen=True)
class PilotProposal:
    picks: list[PilotPick]
    uncovered: list[Uncovered]
    small_uncovered: int  # departments below the minimum group size: counted, never named


@dataclass(frozen=True)
class Emerging:
    """Someone on track for the ambassador badge, with the criteria against their figures and the outlook."""

    record: EmployeeRecord
    criteria: ProgressView
    outlook: emerging.Outlook


@dataclass(frozen=True)
class Candidate:
    """A possible ambassador: found by the rules, volunteered, or both, with the criteria against their figures."""

    record: EmployeeRecord
    holding: Holding | None
    criteria: ProgressView


@dataclass(frozen=True)
class Coverage:
    department: str
    employees: int
    ambassadors: int
    ratio: float
    target: float


class Recognition:
    def __init__(
        self,
        store: RecognitionStore,
        rules: Rules,
        metrics: RecognitionMetrics,
        max_retries: int = 50,
        on_outbox: Callable[[], None] = lambda: None,
        calibrator: Calibrator | None = None,
        min_group_size: int = WORKS_COUNCIL_MIN_GROUP,
        catalogue: Catalogue | None = None,
    ) -> None:
        self.store = store
        self.rules = rules
        self.catalogue = catalogue or programme.load_catalogue()
        self.min_group_size = min_group_size  # the policy's: no figure about a smaller group
        self.metrics = metrics
        self.max_retries = max_retries
        self._on_outbox = on_outbox
        self.calibrator = calibrator
        self._preloaded: dict[str, EmployeeRecord] = {}  # a batch's records, read together (`preload`)
        self._adoption_week = ""  # the event-time week whose adoption snapshot this process took or found

    @property
    def calibration(self) -> Calibration | None:
        """The company's calibration in force (percentile criteria), None before the first."""
        return self.calibrator.calibration if self.calibrator else None

    # ------------------------------------------------------------ the write path

    async def preload(self, employee_ids: Sequence[str]) -> None:
        """Reads the records a batch of ScoreChanged updates in one round trip instead of one each. Safe with
        stale reads: a record someone changed meanwhile fails the commit's revision check and is read again, and
        ScoreChanged versions only grow, so a stale record never makes a newer score look old."""
        self._preloaded = await self.store.load_each(sorted(set(employee_ids)))

    async def _update(
        self, employee_id: str, change: Callable[[EmployeeRecord], Change], preloaded: bool = False
    ) -> tuple[EmployeeRecord, bool]:
        """Applies `change` to the current record with optimistic concurrency, starting from the preloaded
        record when asked (a score's change only: see `preload`), which then holds what this call left.

        Returns the stored record and whether this call changed it.
        """
        result = await self._attempts(
            employee_id, change, self._preloaded.pop(employee_id, None) if preloaded else None
        )
        if preloaded:
            self._preloaded[employee_id] = result[0]
        return result

    async def _attempts(
        self, employee_id: str, change: Callable[[EmployeeRecord], Change], first: EmployeeRecord | None
    ) -> tuple[EmployeeRecord, bool]:
        for _ in range(self.max_retries):
            before = first if first is not None else await self.store.load(employee_id)
            first = None
            outcome = change(before)
            if outcome is None:
                return before, False
            after, envelopes = outcome
            pairs = [(e.event_id, e.SerializeToString(deterministic=True)) for e in envelopes]
            result = await self.store.commit(before, after, pairs)
            if result is Commit.GONE:
                raise Erased(employee_id)
            if result is Commit.CONFLICT:
                continue
            if envelopes:
                self._on_outbox()
            if result is Commit.DUPLICATE:
                return await self.store.load(employee_id), False
            await self._count(envelopes)
            return replace(after, rev=before.rev + 1), True
        raise Unavailable(f"could not update {employee_id}: too many concurrent changes; try again")

    async def _count(self, envelopes: list[envelope_pb2.Envelope]) -> None:
        touched = set()
        for env in envelopes:
            kind = env.WhichOneof("payload")
            if kind == "badge_granted":
                self.metrics.grants.labels(env.badge_granted.badge, _tier_name(env.badge_granted.tier)).inc()
                touched.add(env.badge_granted.badge)
            elif kind == "badge_revoked":
                self.metrics.revocations.labels(env.badge_revoked.badge, _tier_name(env.badge_revoked.tier)).inc()
                touched.add(env.badge_revoked.badge)
        for badge in touched:
            self.metrics.holders.labels(badge).set(await self.store.holder_count(badge))

    async def refresh_holder_gauges(self) -> None:
        for badge in self.rules.badges:
            self.metrics.holders.labels(badge).set(await self.store.holder_count(badge))

    def _apply(self, record: EmployeeRecord, decisions: list[Decision]) -> Change:
        if not decisions:
            return None
        holdings = dict(record.holdings)
        out = []
        for d in decisions:
            holding = d.holding
            if d.action is Action.GRANT and record.programme.declined and self.rules.badges[d.badge].invitation:
                holding = replace(holding, status=model.DECLINED)  # a decline stands until the person changes it
            holdings[(d.badge, d.tier)] = holding
            if d.action is Action.GRANT:
                invitation = self.rules.badges[d.badge].invitation
                out.append(events.granted(record.employee_id, record.department, holding, invitation))
            elif d.action is Action.REVOKE:
                out.append(events.revoked(record.employee_id, record.department, d.holding))
        return replace(record, holdings=holdings), out

    async def record_distribution(self, distribution: Distribution) -> None:
        """Keeps a day's company distribution for the percentile criteria (nothing to keep without them)."""
        if self.calibrator is not None and self.calibrator.enabled:
            await self.calibrator.record(distribution)

    async def apply_scores(self, env: envelope_pb2.Envelope) -> bool:
        """Evaluates one ScoreChanged; False when it was older than (or equal to) what is stored."""
        started = time.perf_counter()
        scores = env.score_changed
        at = utc(env.occurred_at.ToDatetime(tzinfo=UTC))
        windows = {w: {c: getattr(s, c) for c in (*COMPONENTS, TOTAL)} for w, s in scores.windows.items()}
        figures = flatten(dict(scores.signals), windows)
        calibration = await self.calibrator.current(at) if self.calibrator else None
        applied = False

        def change(record: EmployeeRecord) -> Change:
            nonlocal applied
            if scores.version:
                if scores.version <= record.version:
                    return None
            elif record.scored_at is not None and (
                at < record.scored_at or (at == record.scored_at and figures == record.figures)
            ):
                return None
            department = record.department if record.registered else (scores.department_id or env.department_id)
            updated = replace(
                record,
                version=max(scores.version, record.version),
                scored_at=at,
                figures=figures,
                department=department or record.department,
                ranking_opt_out=scores.ranking_opt_out,
            )
            decisions = evaluate(
                self.rules, figures, updated.holdings, at, may_grant=not updated.opt_out, calibration=calibration
            )
            applied = True
            return self._apply(updated, decisions) or (updated, [])

        await self._update(env.employee_id, change, preloaded=True)
        self.metrics.evaluation.observe(time.perf_counter() - started)
        return applied

    async def register(self, env: envelope_pb2.Envelope) -> None:
        """Directory facts from EmployeeRegistered: department, display name and the manager flag. A registration
        after an erasure (a re-hire) lifts the gone marker; a replayed one from before it raises Erased."""
        name = env.employee_registered.display_name
        department = env.department_id
        manager = env.employee_registered.is_manager
        if not await self.store.lift_marker(env.employee_id, utc(env.occurred_at.ToDatetime(tzinfo=UTC))):
            raise Erased(env.employee_id)

        def change(record: EmployeeRecord) -> Change:
            facts = (department, name, manager)
            if record.registered and (record.department, record.display_name, record.manager) == facts:
                return None
            return replace(record, registered=True, department=department, display_name=name, manager=manager), []

        await self._update(env.employee_id, change)

    async def forget(self, employee_id: str, erased_at: datetime) -> None:
        """Erases the employee and leaves the keyed gone marker, so a late or replayed event is refused."""
        if await self.store.forget(employee_id, erased_at):
            self._on_outbox()
            await self.refresh_holder_gauges()

    async def expire_revoked(self, now: datetime, keep: timedelta) -> int:
        """Retention: revoked badges older than `keep` lose their dates, evidence and reason. What remains is
        the grant and answer counts per badge and tier, which keep event ids unique. Returns how many expired."""
        cutoff = now - keep
        expired = 0
        async for records in self.store.records_with_revoked():
            for stale in records:
                if not any(h.revoked_at is not None and h.revoked_at <= cutoff for h in stale.revoked()):
                    continue
                removed = 0

                def change(record: EmployeeRecord) -> Change:
                    nonlocal removed
                    holdings = dict(record.holdings)
                    for key, h in record.holdings.items():
                        if not h.held and h.revoked_at is not None and h.revoked_at <= cutoff:
                            holdings[key] = Holding(h.badge, h.tier, grant_seq=h.grant_seq, response_seq=h.response_seq)
                    removed = sum(1 for key in holdings if holdings[key] != record.holdings[key])
                    return (replace(record, holdings=holdings), []) if removed else None

                try:
                    await self._update(stale.employee_id, change)
                except Erased:
                    continue
                expired += removed
        self.metrics.retention_removed.labels("revoked_badges").inc(expired)
        return expired

    async def sweep(self, now: datetime) -> int:
        """Revokes at-risk tiers whose grace period ended by event time `now` without fresh figures."""
        revoked = 0
        for employee_id in await self.store.due_for_revocation(now):

            def change(record: EmployeeRecord) -> Change:
                decisions = evaluate(
                    self.rules, record.figures, record.holdings, now, may_grant=False, calibration=self.calibration
                )
                return self._apply(record, [d for d in decisions if d.action is Action.REVOKE])

            record, changed = await self._update(employee_id, change)
            if changed:
                revoked += 1
            else:
                await self.store.reindex(record, record)  # a stale index entry: rewrite it from the record
        return revoked

    async def endorse(self, admin: str, employee_id: str, badge: str, note: str) -> tuple[EmployeeRecord, Holding]:
        at = datetime.now(UTC)

        def change(record: EmployeeRecord) -> Change:
            if not record.exists:
                raise NotFound(f"{employee_id} holds no badges")
            holding = model.endorse(self.rules, record, badge, admin, note)
            if holding is None:
                return None
            holdings = {**record.holdings, (holding.badge, holding.tier): holding}
            env = events.endorsed(employee_id, record.department, holding, at)
            return replace(record, holdings=holdings), [env]

        record, _ = await self._update(employee_id, change)
        holding = record.top_holding(self.rules, badge)
        assert holding is not None
        return record, holding

    async def respond(
        self, employee_id: str, badge: str, accept: bool, reason: str, reason_code: str = ""
    ) -> tuple[EmployeeRecord, Holding]:
        at = datetime.now(UTC)
        code = "" if accept else self.catalogue.decline_reason(reason_code, "reason_code")

        def change(record: EmployeeRecord) -> Change:
            holding = model.respond(self.rules, record, badge, accept, reason)
            if holding is None:
                return None
            was_accepted = record.status(self.rules) == model.ACCEPTED
            holdings = {**record.holdings, (holding.badge, holding.tier): holding}
            env = events.answered(employee_id, record.department, holding, accept, at)
            chosen = programme.answered(record.programme, accept, code, at, was_accepted)
            return replace(record, holdings=holdings, programme=chosen), [env]

        record, _ = await self._update(employee_id, change)
        holding = record.top_holding(self.rules, badge)
        assert holding is not None
        return record, holding

    async def set_preferences(
        self, employee_id: str, opt_out: bool, hidden: bool, appreciations_shared: bool = False
    ) -> EmployeeRecord:
        def change(record: EmployeeRecord) -> Change:
            chosen = replace(record.programme, appreciations_shared=appreciations_shared)
            if record.exists and (record.opt_out, record.hidden, record.programme) == (opt_out, hidden, chosen):
                return None
            return replace(record, opt_out=opt_out, hidden=hidden, programme=chosen), []

        record, _ = await self._update(employee_id, change)
        return record

    async def record(self, employee_id: str) -> EmployeeRecord:
        return await self.store.load(employee_id)

    # ------------------------------------------------------------ the programme: consent, volunteering, legitimation

    async def show_badge(self, employee_id: str, badge: str, shown: bool) -> EmployeeRecord:
        """The holder shows a facet badge to colleagues or hides it; invitation badges are shown by accepting."""
        model.known_badge(self.rules, badge)
        if self.rules.badges[badge].invitation:
            raise InvalidArgument("badge", f"{self.rules.badges[badge].name} is shown by accepting the invitation")

        def change(record: EmployeeRecord) -> Change:
            chosen = programme.show_badge(record.programme, badge, shown)
            return None if chosen == record.programme else (replace(record, programme=chosen), [])

        record, _ = await self._update(employee_id, change)
        return record

    async def volunteer(self, employee_id: str, withdraw: bool) -> tuple[EmployeeRecord, ProgressView]:
        """Records the offer; a volunteer who meets the ambassador criteria is invited at once (with the figures
        last evaluated, without waiting for the confirmation period: the offer is their own motivation, which the
        period otherwise has to infer), one who does not gets their progress."""
        at = datetime.now(UTC)
        badge = self.rules.coverage.badge
        rules = programme.without_confirmation(self.rules, badge)

        def change(record: EmployeeRecord) -> Change:
            chosen = programme.volunteer(record.programme, at, withdraw)
            offer = []
            if chosen != record.programme:
                chosen = replace(chosen, events=chosen.events + 1)
                offer = [events.volunteered(employee_id, record.department, chosen.events, at, withdraw)]
            updated = replace(record, programme=chosen)
            decisions = []
            if not withdraw and record.scored_at is not None and record.top_holding(self.rules, badge) is None:
                decisions = [
                    d
                    for d in evaluate(
                        rules,
                        record.figures,
                        record.holdings,
                        record.scored_at,
                        may_grant=not record.opt_out,
                        calibration=self.calibration,
                    )
                    if d.badge == badge and d.action is Action.GRANT
                ]
            applied = self._apply(updated, decisions)
            if applied is None:
                return (updated, offer) if offer else None
            return applied[0], [*offer, *applied[1]]

        record, _ = await self._update(employee_id, change)
        return record, self.criteria(record)

    def criteria(self, record: EmployeeRecord) -> ProgressView:
        """The ambassador criteria against the person's current figures, the same view for every candidate."""
        badge = self.rules.coverage.badge
        views = progress(self.rules, record.figures, {}, may_grant=not record.opt_out, calibration=self.calibration)
        return next(v for v in views if v.badge == badge)

    async def candidates(self, department: str) -> list[Candidate]:
        """Visible holders of the ambassador badge (any answer) beside visible volunteers."""
        badge = self.rules.coverage.badge
        ids = sorted(set(await self.store.holders(badge)) | set(await self.store.in_programme()))
        found = []
        for record in await self.store.load_many(ids):
            holding = record.top_holding(self.rules, badge)
            if not record.visible or (holding is None and not record.programme.volunteering):
                continue
            if department and record.department != department:
                continue
            found.append(Candidate(record, holding, self.criteria(record)))
        return sorted(found, key=lambda c: (c.record.department, c.record.display_name, c.record.employee_id))

    async def emerging(self, department: str) -> list[Emerging]:
        """People on track for the ambassador badge who do not hold it (emerging.py), soonest expected first.
        Nobody who opted out of recognition or hides from colleagues is listed."""
        badge = self.rules.coverage.badge
        tier = self.rules.badge(badge).ordered_tiers()[0]
        found = []
        for record in await self.store.load_many(await self.store.registered()):
            if not record.visible or record.scored_at is None or (department and record.department != department):
                continue
            holding = record.holdings.get((badge, tier))
            outlook = emerging.outlook(self.rules, record.figures, holding, record.scored_at, self.calibration)
            if outlook.on_track:
                found.append(Emerging(record, self.criteria(record), outlook))
        latest = datetime.max.replace(tzinfo=UTC)
        return sorted(found, key=lambda e: (e.outlook.expected_at or latest, e.record.employee_id))

    async def decline_summary(self) -> DeclineSummary:
        records = await self.store.load_many(await self.store.in_programme())
        return programme.summarise_declines([r.programme for r in records], self.min_group_size)

    async def funnel(self, now: datetime) -> list[FunnelRow]:
        """Detected, accepted, declined, trained, active after 90 days, lapsed: company-wide and per department
        of at least the minimum group size. People who opted out of recognition are not counted."""
        badge = self.rules.coverage.badge
        ids = sorted(set(await self.store.detected()) | set(await self.store.in_programme()))
        journeys = []
        for record in await self.store.load_many(ids):
            if record.opt_out:
                continue
            journeys.append(self._journey(record, badge))
        return programme.funnel(journeys, await self.store.departments(), now, self.min_group_size)

    @staticmethod
    def _journey(record: EmployeeRecord, badge: str) -> Journey:
        """The person's steps: invited by the (latest) grant; an ambassador while the badge is held and accepted;
        lapsed after accepting when they withdrew (declined) or the badge was revoked (or is being offered again)."""
        holding = next((h for (b, _), h in record.holdings.items() if b == badge and h.grant_seq > 0), None)
        p = record.programme
        accepted_at = p.accepted_at if holding is not None else None
        active = holding is not None and holding.held and holding.status == model.ACCEPTED
        lapse, lapsed_at = None, None
        if accepted_at is not None and not active:
            assert holding is not None
            if holding.status == model.DECLINED and p.withdrew_at is not None:
                lapse, lapsed_at = programme.Lapse.WITHDREW, p.withdrew_at
            else:
                lapse, lapsed_at = programme.Lapse.INACTIVE, None if holding.held else holding.revoked_at
        completed = [t.completed_at for t in p.trainings if t.completed_at is not None]
        return Journey(
            department=record.department,
            invited_at=holding.granted_at if holding is not None else None,
            accepted_at=accepted_at,
            trained_at=min(completed) if completed else None,
            declined=p.declined,
            active=active,
            volunteered=p.volunteering,
            lapse=lapse,
            lapsed_at=lapsed_at,
        )

    async def members(self) -> list[insights.Member]:
        """Every registered employee with their figures, the manager flag and whether they are an ambassador."""
        badge = self.rules.coverage.badge
        out = []
        for record in await self.store.load_many(await self.store.registered()):
            if not record.registered or not record.department:
                continue
            holding = record.top_holding(self.rules, badge)
            ambassador = holding is not None and holding.status == model.ACCEPTED and record.visible
            out.append(insights.Member(record.department, record.manager, ambassador, record.figures))
        return out

    async def role_models(self) -> insights.RoleModels:
        """Managers' activity against everyone else's (aggregates only; docs/programme.md)."""
        return insights.role_models(await self.members(), self.min_group_size)

    async def adoption_by_coverage(self) -> insights.AdoptionByCoverage:
        return insights.adoption_by_coverage(await self.members(), self.min_group_size)

    async def snapshot_adoption(self, now: datetime) -> bool:
        """Once per event-time week (the first sweep that reaches it): adoption with and without ambassadors, so
        the programme sees it over time. True when this call stored the week's snapshot."""
        week = insights.week_of(now).isoformat()
        if week == self._adoption_week:
            return False
        snapshot = insights.encode_adoption(await self.adoption_by_coverage())
        stored = await self.store.add_adoption_week(week, snapshot, insights.ADOPTION_WEEKS_KEPT)
        self._adoption_week = week
        return stored

    async def adoption_history(self) -> list[tuple[str, insights.AdoptionByCoverage]]:
        return [(week, insights.decode_adoption(raw)) for week, raw in (await self.store.adoption_weeks()).items()]

    async def legitimate(self, employee_id: str, change_: Legitimation) -> EmployeeRecord:
        """Records training, a time budget, a resource or appreciation for an ambassador who accepted."""

        def change(record: EmployeeRecord) -> Change:
            if not record.exists:
                raise NotFound(f"{employee_id} holds no badges")
            programme.must_have_accepted(record.status(self.rules), employee_id)
            given = programme.legitimate(self.catalogue, record.programme, employee_id, change_)
            if given is None:
                return None
            given = replace(given, events=given.events + 1)
            item = change_.value if change_.change in programme.CATALOGUE_CHANGES else ""
            env = events.legitimation_recorded(
                employee_id, record.department, given.events, change_.at, change_.change.value, item
            )
            return replace(record, programme=given), [env]

        record, _ = await self._update(employee_id, change)
        return record

    # ------------------------------------------------------------ queries over many employees

    async def ambassadors(self, department: str, statuses: frozenset[str]) -> list[tuple[EmployeeRecord, Holding]]:
        badge = self.rules.coverage.badge
        found = []
        for record in await self.store.load_many(await self.store.holders(badge)):
            holding = record.top_holding(self.rules, badge)
            if holding is None or not record.visible or holding.status not in statuses:
                continue
            if department and record.department != department:
                continue
            found.append((record, holding))
        return sorted(found, key=lambda pair: (pair[0].department, pair[0].display_name, pair[0].employee_id))

    async def coverage(self) -> tuple[list[Coverage], list[str]]:
        """Departments at or above the policy's minimum group size with figures, and those of them with no
        ambassador (a smaller department is named nowhere: naming it would single its few people out)."""
        rule = self.rules.coverage
        sizes = await self.store.departments()
        counts: dict[str, int] = {}
        for record, _ in await self.ambassadors("", frozenset({model.ACCEPTED})):
            counts[record.department] = counts.get(record.department, 0) + 1
        shown = [
            Coverage(d, n, counts.get(d, 0), counts.get(d, 0) / n, rule.target_ratio)
            for d, n in sizes.items()
            if n >= self.min_group_size
        ]
        without = [c.department for c in shown if not c.ambassadors]
        return shown, without

    async def pilot_group(self, size: int) -> PilotProposal:
        rule = self.rules.pilot_group
        if not 1 <= size <= rule.max_size:
            raise InvalidArgument("size", f"must be between 1 and {rule.max_size}")
        pool = []
        for record in await self.store.load_many(await self.store.pilot_candidates()):
            activities = record.figures.get("pilot_activities", 0.0)
            if not record.visible or record.ranking_opt_out or activities < rule.min_pilot_activities:
                continue
            pool.append((record, record.figures.get(rule.metric, 0.0), activities))
        pool.sort(key=lambda c: (-c[1], -c[2], c[0].employee_id))
        departments = {r.department for r, _, _ in pool if r.department}
        if size < len(departments):
            raise InvalidArgument(
                "size",
                f"{len(departments)} departments have pilot candidates; a group covering each needs at least "
                f"{len(departments)} people",
            )
        picks: list[PilotPick] = []
        chosen: set[str] = set()
        covered: set[str] = set()
        for record, score, activities in pool:
            if record.department in departments and record.department not in covered:
                reason = f"strongest pilot signals in department {record.department}"
                picks.append(PilotPick(record, score, activities, _pilot_reason(reason, score, activities)))
                chosen.add(record.employee_id)
                covered.add(record.department)
        for record, score, activities in pool:
            if len(picks) >= size:
                break
            if record.employee_id not in chosen:
                reason = "among the strongest pilot signals overall"
                picks.append(PilotPick(record, score, activities, _pilot_reason(reason, score, activities)))
                chosen.add(record.employee_id)
        sizes = await self.store.departments()
        missing = {d: n for d, n in sizes.items() if d not in covered}
        uncovered = [
            Uncovered(d, n, "no one there has confirmed pre-launch activity and may be proposed")
            for d, n in sorted(missing.items())
            if n >= self.min_group_size
        ]
        ordered = sorted(picks, key=lambda p: (-p.score, -p.activities, p.record.employee_id))
        return PilotProposal(ordered, uncovered, sum(1 for n in missing.values() if n < self.min_group_size))


def _pilot_reason(prefix: str, score: float, activities: float) -> str:
    return f"{prefix}: pilot score {score:.1f}, {activities:g} pre-launch surveys, workshops or interviews"


def _tier_name(tier: int) -> str:
    return badges_pb2.Tier.Name(tier).removeprefix("TIER_").lower()
