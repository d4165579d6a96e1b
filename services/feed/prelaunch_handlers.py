"""Use cases of pre-launch sessions: register (programme owner), list, and confirm attendance (organiser,
programme owner, or the survey tool), each confirmation an event of the attendee written with the outbox."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from services.common.auth import Principal, Role
from services.common.errors import NotFound
from services.feed import domain, events, prelaunch
from services.feed.domain import Limits
from services.feed.prelaunch import Session, SessionType
from services.feed.prelaunch_store import SessionRegistry
from services.feed.store import FeedStore, Keys, Tx


class PreLaunch:
    def __init__(
        self,
        store: FeedStore,
        sessions: SessionRegistry,
        limits: Limits,
        clock: Callable[[], int],
    ) -> None:
        self._store = store
        self._sessions = sessions
        self._limits = limits
        self._clock = clock

    async def register(
        self,
        principal: Principal,
        session_id: str,
        type_: int,
        title: str,
        starts_ms: int,
        ends_ms: int,
        department_ids: Sequence[str],
        organiser_id: str,
        pre_launch: bool,
    ) -> Session:
        principal.require(Role.PROGRAMME_OWNER)
        session = prelaunch.check_registration(
            self._limits,
            principal.subject,
            session_id,
            type_,
            title,
            starts_ms,
            ends_ms,
            department_ids,
            organiser_id,
            pre_launch,
        )
        await self._sessions.put(session)
        return session

    async def sessions(self, principal: Principal) -> list[Session]:
        principal.require(Role.PROGRAMME_OWNER)
        return await self._sessions.all()

    async def confirm(
        self, principal: Principal, session_id: str, employee_id: str, contributed: bool, answered_questions: int
    ) -> bool:
        """Records one attendance; False when it was confirmed before (a retry)."""
        sid = domain.check_id("session_id", session_id, self._limits)
        session = await self._sessions.get(sid)
        if session is None:
            raise prelaunch.unregistered("session_id", sid)
        prelaunch.may_confirm(principal, session)
        attendee_id = domain.check_id("employee_id", employee_id, self._limits)
        payload = prelaunch.attendance_payload(session, contributed, answered_questions, self._limits)
        key = Keys.surveys_of(attendee_id) if session.type is SessionType.SURVEY else Keys.sessions_of(attendee_id)

        async def handler(tx: Tx) -> bool:
            attendee = await tx.employee(attendee_id)
            if attendee is None:
                raise NotFound(f"employee_id: '{attendee_id}' is not in the directory")
            at_ms = prelaunch.check_attendee(principal, session, attendee, self._clock())
            if await tx.is_member(key, sid):
                return False
            tx.queue("sadd", key, sid)
            tx.emit(
                events.envelope(
                    event_id=events.new_event_id(),
                    occurred_ms=at_ms,
                    producer=events.PRODUCER,
                    employee_id=attendee.employee_id,
                    department_id=attendee.department_id,
                    payload=payload,
                )
            )
            return True

        return await self._store.run(handler)
