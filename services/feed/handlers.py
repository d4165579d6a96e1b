"""Use cases of the feed: each reads state in a transaction, applies the domain rules, queues the
state change and its event, and commits both together (see store.FeedStore.run)."""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, TypeVar

from catalyst.events.v1 import envelope_pb2
from catalyst.events.v1 import interactions_pb2 as ev
from catalyst.feed.v1 import feed_pb2
from google.protobuf.message import Message

from services.common.auth import Principal, Role
from services.common.errors import InvalidArgument, NotFound
from services.feed import domain, events, ingest, prelaunch
from services.feed.domain import Comment, Employee, Limits, Post, Profile
from services.feed.ingest_store import IngestStore, IngestView
from services.feed.prelaunch_store import SessionRegistry
from services.feed.store import FeedStore, Keys, Tx

T = TypeVar("T")

MEMBER_ROLES = (Role.EMPLOYEE, Role.PROGRAMME_OWNER, Role.HR)
READER_ROLES = (*MEMBER_ROLES, Role.SERVICE)


@dataclass(frozen=True)
class MyData:
    """What the feed holds about one person."""

    employee: Employee | None
    profile: Profile
    posts: list[Post]
    comments: list[Comment]
    reactions: list[tuple[str, str]]  # (post id, reaction name)
    feedback: dict[str, dict[str, Any]]
    surveys: list[str]
    sessions: list[str]


def wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


def random_entropy() -> str:
    return secrets.token_hex(4)


class FeedHandlers:
    """The application layer: no gRPC, no Redis commands; only rules, transactions and events."""

    def __init__(
        self,
        store: FeedStore,
        ingestion: IngestStore,
        limits: Limits,
        sessions: SessionRegistry,
        *,
        ingest_max_future_ms: int = 300_000,
        max_comments_shown: int = 200,
        clock: Callable[[], int] = wall_clock_ms,
        entropy: Callable[[], str] = random_entropy,
    ) -> None:
        self._store = store
        self._ingestion = ingestion
        self._sessions = sessions
        self._limits = limits
        self._max_future_ms = ingest_max_future_ms
        self._max_comments = max_comments_shown
        self._clock = clock
        self._entropy = entropy

    # ---------------------------------------------------------------- helpers

    def _emit(self, tx: Tx, actor: Employee, payload: Message, now_ms: int) -> None:
        tx.emit(
            events.envelope(
                event_id=events.new_event_id(),
                occurred_ms=now_ms,
                producer=events.PRODUCER,
                employee_id=actor.employee_id,
                department_id=actor.department_id,
                payload=payload,
            )
        )

    async def _actor(self, tx: Tx, principal: Principal) -> Employee:
        return domain.require_registered(await tx.employee(principal.subject), principal.subject)

    async def _department_of(self, tx: Tx, emp_id: str, fallback: str) -> str:
        emp = await tx.employee(emp_id)
        return emp.department_id if emp else fallback

    async def _commit(self, handler: Callable[[Tx], Awaitable[T]]) -> T:
        return await self._store.run(handler)

    # ---------------------------------------------------------------- posts and questions

    async def create_post(
        self, principal: Principal, kind: int, title: str, body: str, tags: Sequence[str], target_department_id: str
    ) -> Post:
        principal.require(*MEMBER_ROLES)
        draft = domain.check_post_draft(kind, title, body, tags, target_department_id, self._limits)

        async def handler(tx: Tx) -> Post:
            actor = await self._actor(tx, principal)
            if draft.target_department_id and not await tx.department_exists(draft.target_department_id):
                raise InvalidArgument(
                    "target_department_id", f"there is no department '{draft.target_department_id}' in the directory"
                )
            now = self._clock()
            post = Post(
                post_id=domain.make_id("p", now, self._entropy()),
                author_id=actor.employee_id,
                author_department_id=actor.department_id,
                kind=kind,
                title=draft.title,
                body=draft.body,
                tags=draft.tags,
                target_department_id=draft.target_department_id,
                created_ms=now,
            )
            tx.save_post(post)
            tx.index_post(post)
            if kind == ev.POST_KIND_QUESTION:
                payload: Message = ev.QuestionAsked(
                    question_id=post.post_id,
                    body_length=len(post.body),
                    tags=post.tags,
                    target_department_id=post.target_department_id,
                )
            else:
                payload = ev.PostCreated(
                    post_id=post.post_id,
                    kind=kind,
                    body_length=len(post.body),
                    tags=post.tags,
                    target_department_id=post.target_department_id,
                )
            self._emit(tx, actor, payload, now)
            return post

        return await self._commit(handler)

    async def edit_post(self, principal: Principal, post_id: str, title: str, body: str, tags: Sequence[str]) -> Post:
        principal.require(*MEMBER_ROLES)
        post_id = domain.check_post_id("post_id", post_id)

        async def handler(tx: Tx) -> Post:
            actor = await self._actor(tx, principal)
            post = domain.require_post(await tx.post(post_id), post_id)
            domain.ensure_can_edit(post, actor.employee_id)
            draft = domain.check_post_draft(post.kind, title, body, tags, post.target_department_id, self._limits)
            now = self._clock()
            edited = replace(post, title=draft.title, body=draft.body, tags=draft.tags, edited_ms=now)
            tx.save_post(edited)
            self._emit(tx, actor, ev.PostEdited(post_id=post_id, body_length=len(edited.body)), now)
            return edited

        return await self._commit(handler)

    async def delete_post(self, principal: Principal, post_id: str) -> None:
        principal.require(*MEMBER_ROLES)
        post_id = domain.check_post_id("post_id", post_id)

        async def handler(tx: Tx) -> None:
            post = domain.require_post(await tx.post(post_id), post_id)
            domain.ensure_can_delete(post, principal)
            author = Employee(
                employee_id=post.author_id,
                display_name="",
                department_id=await self._department_of(tx, post.author_id, post.author_department_id),
            )
            await self._remove_post(tx, post)
            # Keyed by the author even when a moderator deletes: the event is about the author's content.
            self._emit(tx, author, ev.PostDeleted(post_id=post_id), self._clock())

        await self._commit(handler)

    async def _remove_post(self, tx: Tx, post: Post) -> None:
        for cid in await tx.comment_ids(post.post_id):
            comment = await tx.comment(cid)
            if comment is not None:
                tx.queue("srem", Keys.comments_of(comment.author_id), cid)
            tx.queue("delete", Keys.comment(cid))
        for member in await tx.members(Keys.post_reactors(post.post_id)):
            reactor, _, kind = member.partition("|")
            tx.queue("srem", Keys.reactions_of(reactor), f"{post.post_id}|{kind}")
        tx.queue(
            "delete",
            Keys.post(post.post_id),
            Keys.post_reactions(post.post_id),
            Keys.post_reactors(post.post_id),
            Keys.post_comments(post.post_id),
        )
        tx.queue("srem", Keys.posts_of(post.author_id), post.post_id)
        tx.queue("zrem", Keys.FEED_ALL, post.post_id)
        for dept in {post.author_department_id, post.target_department_id} - {""}:
            tx.queue("zrem", Keys.feed_department(dept), post.post_id)

    # ---------------------------------------------------------------- comments, answers, reactions

    async def add_comment(self, principal: Principal, post_id: str, body: str, *, is_answer: bool = False) -> Comment:
        principal.require(*MEMBER_ROLES)
        field_name = "question_id" if is_answer else "post_id"
        post_id = domain.check_post_id(field_name, post_id)
        body = domain.check_comment_body(body, self._limits)

        async def handler(tx: Tx) -> Comment:
            actor = await self._actor(tx, principal)
            post = domain.require_post(await tx.post(post_id), post_id, field_name)
            if is_answer:
                domain.ensure_question(post, field_name)
            now = self._clock()
            comment = Comment(
                comment_id=domain.make_id("c", now, self._entropy()),
                post_id=post_id,
                author_id=actor.employee_id,
                body=body,
                is_answer=is_answer,
                created_ms=now,
            )
            tx.save_comment(comment)
            tx.queue("hincrby", Keys.post(post_id), "comment_count", 1)
            author_dept = await self._department_of(tx, post.author_id, post.author_department_id)
            if is_answer:
                payload: Message = ev.AnswerPosted(
                    answer_id=comment.comment_id,
                    question_id=post_id,
                    question_author_id=post.author_id,
                    question_author_department_id=author_dept,
                    body_length=len(body),
                )
            else:
                payload = ev.CommentAdded(
                    comment_id=comment.comment_id,
                    post_id=post_id,
                    post_author_id=post.author_id,
                    post_author_department_id=author_dept,
                    body_length=len(body),
                )
            self._emit(tx, actor, payload, now)
            return comment

        return await self._commit(handler)

    async def set_reaction(self, principal: Principal, post_id: str, kind: int, *, add: bool) -> None:
        """Adds or removes one reaction of the caller; repeating either is a no-op without an event."""
        principal.require(*MEMBER_ROLES)
        post_id = domain.check_post_id("post_id", post_id)
        name = domain.check_reaction(kind)

        async def handler(tx: Tx) -> None:
            actor = await self._actor(tx, principal)
            post = domain.require_post(await tx.post(post_id), post_id)
            if add:
                domain.ensure_can_react(post.author_id, actor.employee_id)
            member = f"{actor.employee_id}|{name}"
            present = await tx.is_member(Keys.post_reactors(post_id), member)
            if present == add:
                return
            verb = "sadd" if add else "srem"
            tx.queue(verb, Keys.post_reactors(post_id), member)
            tx.queue(verb, Keys.reactions_of(actor.employee_id), f"{post_id}|{name}")
            tx.queue("hincrby", Keys.post_reactions(post_id), name, 1 if add else -1)
            author_dept = await self._department_of(tx, post.author_id, post.author_department_id)
            event_type = ev.ReactionAdded if add else ev.ReactionRemoved
            payload = event_type(
                post_id=post_id, post_author_id=post.author_id, post_author_department_id=author_dept, reaction=kind
            )
            self._emit(tx, actor, payload, self._clock())

        await self._commit(handler)

    async def accept_answer(self, principal: Principal, question_id: str, answer_id: str) -> None:
        principal.require(*MEMBER_ROLES)
        question_id = domain.check_post_id("question_id", question_id)
        answer_id = domain.check_comment_id("answer_id", answer_id)

        async def handler(tx: Tx) -> None:
            actor = await self._actor(tx, principal)
            question = domain.require_post(await tx.post(question_id), question_id, "question_id")
            answer = await tx.comment(answer_id)
            if not domain.ensure_can_accept(question, answer, answer_id, actor.employee_id):
                return
            assert answer is not None
            tx.queue("hset", Keys.post(question_id), "accepted_answer_id", answer_id)
            tx.queue("hset", Keys.comment(answer_id), "accepted", "1")
            payload = ev.AnswerAccepted(
                answer_id=answer_id,
                question_id=question_id,
                answer_author_id=answer.author_id,
                answer_author_department_id=await self._department_of(tx, answer.author_id, ""),
            )
            self._emit(tx, actor, payload, self._clock())

        await self._commit(handler)

    # ---------------------------------------------------------------- profile and signals

    async def update_profile(
        self, principal: Principal, request: feed_pb2.UpdateProfileRequest
    ) -> tuple[Employee, Profile]:
        principal.require(*MEMBER_ROLES)
        wanted = domain.check_profile(
            request.job_title,
            request.location,
            request.about,
            list(request.skills),
            request.photo_url,
            request.phone,
            self._limits,
        )

        async def handler(tx: Tx) -> tuple[Employee, Profile]:
            actor = await self._actor(tx, principal)
            now = self._clock()
            stored, changes = domain.updated_profile(await tx.profile(actor.employee_id), wanted, now)
            if changes:
                tx.save_profile(actor.employee_id, stored)
                payload = ev.ProfileUpdated(completeness=domain.completeness(stored), changed_fields=changes)
                self._emit(tx, actor, payload, now)
            return actor, stored

        return await self._commit(handler)

    async def record_feature_trial(self, principal: Principal, feature_id: str) -> None:
        principal.require(*MEMBER_ROLES)
        feature_id = domain.check_id("feature_id", feature_id, self._limits)

        async def handler(tx: Tx) -> None:
            actor = await self._actor(tx, principal)
            self._emit(tx, actor, ev.FeatureTried(feature_id=feature_id), self._clock())

        await self._commit(handler)

    async def submit_feedback(self, principal: Principal, kind: int, topic: str, body: str) -> str:
        principal.require(*MEMBER_ROLES)
        kind, topic, body = domain.check_feedback(kind, topic, body, self._limits)

        async def handler(tx: Tx) -> str:
            actor = await self._actor(tx, principal)
            now = self._clock()
            feedback_id = domain.make_id("f", now, self._entropy())
            record = json.dumps({"kind": kind, "topic": topic, "body": body, "created_ms": now})
            tx.queue("hset", Keys.feedback_of(actor.employee_id), feedback_id, record)
            payload = ev.FeedbackSubmitted(feedback_id=feedback_id, kind=kind, topic=topic, body_length=len(body))
            self._emit(tx, actor, payload, now)
            return feedback_id

        return await self._commit(handler)

    async def record_survey(self, principal: Principal, survey_id: str, answered: int) -> None:
        """A registered survey after launch, once per employee: a repeat is a no-op. Pre-launch responses come
        from the survey tool (PreLaunch.confirm), never from the respondent."""
        principal.require(*MEMBER_ROLES)
        survey_id = domain.check_survey(survey_id, answered, self._limits)
        session = prelaunch.self_recorded("survey_id", await self._sessions.get(survey_id), survey_id, survey=True)

        async def handler(tx: Tx) -> None:
            actor = await self._actor(tx, principal)
            if await tx.is_member(Keys.surveys_of(actor.employee_id), survey_id):
                return
            tx.queue("sadd", Keys.surveys_of(actor.employee_id), survey_id)
            payload = ev.SurveyAnswered(survey_id=survey_id, pre_launch=session.pre_launch, answered_questions=answered)
            self._emit(tx, actor, payload, self._clock())

        await self._commit(handler)

    async def record_session(self, principal: Principal, session_id: str, kind: int) -> None:
        """Attendance of a registered workshop or interview after launch, once per employee and session;
        contributions and pre-launch attendance are confirmed by the organiser (PreLaunch.confirm)."""
        principal.require(*MEMBER_ROLES)
        session_id = domain.check_session(session_id, kind, self._limits)
        session = prelaunch.self_recorded("session_id", await self._sessions.get(session_id), session_id, False, kind)

        async def handler(tx: Tx) -> None:
            actor = await self._actor(tx, principal)
            if await tx.is_member(Keys.sessions_of(actor.employee_id), session_id):
                return
            tx.queue("sadd", Keys.sessions_of(actor.employee_id), session_id)
            payload = ev.WorkshopAttended(session_id=session_id, kind=kind, pre_launch=session.pre_launch)
            self._emit(tx, actor, payload, self._clock())

        await self._commit(handler)

    # ---------------------------------------------------------------- reads

    async def get_post(self, principal: Principal, post_id: str) -> tuple[Post, list[Comment]]:
        principal.require(*READER_ROLES)
        post_id = domain.check_post_id("post_id", post_id)
        post = domain.require_post(await self._store.post(post_id), post_id)
        return post, await self._store.comments(post_id, self._max_comments)

    async def list_feed(
        self, principal: Principal, department_id: str, page_size: int, page_token: str
    ) -> tuple[list[Post], str]:
        principal.require(*READER_ROLES)
        dept = domain.check_id("department_id", department_id, self._limits, required=False)
        size, after = domain.check_page(page_size, page_token, self._limits)
        if dept and not await self._store.redis.sismember(Keys.DEPARTMENTS, dept):
            raise InvalidArgument("department_id", f"there is no department '{dept}' in the directory")
        posts, last = await self._store.feed_page(dept, after, size)
        return posts, domain.page_token_after(last) if last else ""

    async def get_profile(self, principal: Principal, employee_id: str) -> tuple[Employee, Profile]:
        principal.require(*READER_ROLES)
        emp_id = domain.check_id("employee_id", employee_id, self._limits, required=False) or principal.subject
        employee = await self._store.employee(emp_id)
        if employee is None:
            raise NotFound(f"employee_id: there is no employee '{emp_id}' in the directory")
        return employee, await self._store.profile(emp_id)

    # ---------------------------------------------------------------- privacy

    async def forget_me(self, principal: Principal) -> None:
        """The caller asks to be forgotten (see _erase)."""
        principal.require(*MEMBER_ROLES)

        async def handler(tx: Tx) -> None:
            await self._erase(tx, await self._actor(tx, principal))

        await self._commit(handler)

    async def erase_employee(self, principal: Principal, employee_id: str, reason: str) -> None:
        """HR erases a leaver, also one the directory no longer lists (their content may still be stored)."""
        principal.require(Role.HR)
        emp_id, _ = domain.check_erasure(employee_id, reason, self._limits)

        async def handler(tx: Tx) -> None:
            await self._erase(tx, await tx.employee(emp_id) or Employee(emp_id, "", ""))

        await self._commit(handler)

    async def _erase(self, tx: Tx, person: Employee) -> None:
        """Removes the person's directory entry, profile, posts, comments, reactions, feedback and signals, and
        tells every consumer through EmployeeForgotten to delete what it holds."""
        me = person.employee_id
        own_posts = set(await tx.members(Keys.posts_of(me)))
        for post_id in own_posts:
            post = await tx.post(post_id)
            if post is not None:
                await self._remove_post(tx, post)
        for comment_id in await tx.members(Keys.comments_of(me)):
            comment = await tx.comment(comment_id)
            tx.queue("delete", Keys.comment(comment_id))
            if comment is None or comment.post_id in own_posts:
                continue
            if await tx.post(comment.post_id) is not None:
                tx.queue("zrem", Keys.post_comments(comment.post_id), comment_id)
                tx.queue("hincrby", Keys.post(comment.post_id), "comment_count", -1)
                if comment.accepted:
                    tx.queue("hset", Keys.post(comment.post_id), "accepted_answer_id", "")
        for member in await tx.members(Keys.reactions_of(me)):
            post_id, _, name = member.partition("|")
            if post_id in own_posts or await tx.post(post_id) is None:
                continue
            tx.queue("srem", Keys.post_reactors(post_id), f"{me}|{name}")
            tx.queue("hincrby", Keys.post_reactions(post_id), name, -1)
        tx.queue(
            "delete",
            Keys.employee(me),
            Keys.profile(me),
            Keys.posts_of(me),
            Keys.comments_of(me),
            Keys.reactions_of(me),
            Keys.feedback_of(me),
            Keys.surveys_of(me),
            Keys.sessions_of(me),
        )
        self._emit(tx, person, ev.EmployeeForgotten(), self._clock())

    async def my_data(self, principal: Principal) -> MyData:
        """Everything the feed stores about the caller (Art. 15); any authenticated caller may ask."""
        me = principal.subject
        store = self._store
        posts = await store.posts(await store.members(Keys.posts_of(me)))
        comments = await store.comments_by_id(await store.members(Keys.comments_of(me)))
        given = [member.partition("|") for member in await store.members(Keys.reactions_of(me))]
        return MyData(
            employee=await store.employee(me),
            profile=await store.profile(me),
            posts=sorted(posts, key=lambda p: p.post_id),
            comments=sorted(comments, key=lambda c: c.comment_id),
            reactions=[(post_id, name) for post_id, _, name in given],
            feedback=await store.feedback(me),
            surveys=await store.members(Keys.surveys_of(me)),
            sessions=await store.members(Keys.sessions_of(me)),
        )

    # ---------------------------------------------------------------- retention

    async def expire_posts(self, keep_ms: int, batch: int = 100) -> tuple[int, int]:
        """Removes posts and questions older than `keep_ms`, with their comments, answers and reactions (a
        comment is never older than its post, so no older comment outlives this). No event: retention limits
        storage, it is no activity, and the scores counted the post when it was written. Returns (posts,
        comments) removed."""
        cutoff = domain.id_floor("p", self._clock() - keep_ms)
        posts = comments = 0
        while ids := await self._store.posts_created_before(cutoff, batch):
            for post_id in ids:

                async def handler(tx: Tx, post_id: str = post_id) -> int:
                    post = await tx.post(post_id)
                    if post is None:
                        tx.queue("zrem", Keys.FEED_ALL, post_id)  # a stale index entry
                        return -1
                    thread = len(await tx.comment_ids(post_id))
                    await self._remove_post(tx, post)
                    return thread

                thread = await self._store.run(handler)
                if thread >= 0:
                    posts += 1
                    comments += thread
        return posts, comments

    async def expire_feedback(self, keep_ms: int) -> int:
        """Removes feedback texts older than `keep_ms`; returns how many."""
        cutoff = self._clock() - keep_ms
        removed = 0
        async for key, ids in self._store.feedback_keys():
            removed += await self._store.delete_fields(key, [i for i in ids if domain.created_ms(i) < cutoff])
        return removed

    # ---------------------------------------------------------------- directory and ingestion

    async def upsert_employees(self, principal: Principal, rows: Sequence[tuple[str, str, str, bool]]) -> int:
        """Creates or changes directory entries; unchanged entries write nothing and emit nothing."""
        principal.require(Role.HR)
        employees = domain.check_employees(rows, self._limits)

        async def handler(tx: Tx) -> int:
            now = self._clock()
            changed = 0
            for emp in employees:
                if await tx.employee(emp.employee_id) == emp:
                    continue
                tx.save_employee(emp)
                payload = ev.EmployeeRegistered(display_name=emp.display_name, is_manager=emp.is_manager)
                self._emit(tx, emp, payload, now)
                changed += 1
            return changed

        return await self._commit(handler)

    async def ingest(
        self, principal: Principal, source: str, items: Sequence[feed_pb2.ImportedInteraction]
    ) -> tuple[int, int]:
        """Imports interactions with their original ids and times; returns (accepted, duplicates).
        The whole batch is validated first and taken atomically (ingest_store.IngestStore); concurrent
        batches of one source never conflict, and an id both carry is taken once."""
        principal.require(Role.SERVICE)
        source = ingest.check_source(source, self._limits)
        ingest.check_batch_size(len(items), self._limits)
        now = self._clock()
        checked = [
            ingest.check_interaction(it, i, now, self._max_future_ms, self._limits) for i, it in enumerate(items)
        ]
        unique = ingest.first_occurrences(checked)

        def build(view: IngestView) -> list[tuple[str, envelope_pb2.Envelope]]:
            return [
                (item.source_id, ingest.envelope_for(source, item, view.departments))
                for item in unique
                if item.source_id not in view.seen
            ]

        accepted = await self._ingestion.ingest(
            source, [item.source_id for item in unique], ingest.employees_needed(unique), build
        )
        return accepted, len(checked) - accepted
