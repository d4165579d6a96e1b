"""What the simulated people do, day by day: the actions of the pre-launch and the live phase.

Pure and deterministic for a scenario: one seeded random stream, no clock, no I/O, and no iteration over
sets (their order would change between processes). The simulator keeps its own model of the content it
created (posts, questions, answers), so every reaction, comment and answer names an existing target,
its author and the author's department without reading anything back.
"""

from __future__ import annotations

import bisect
import datetime as dt
import itertools
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass, field

from services.simulator.actions import (
    Action,
    ActionKind,
    FeedbackKind,
    Phase,
    Reaction,
    SessionKind,
    SimulatedDay,
)
from services.simulator.population import Employee, Persona, Population
from services.simulator.scenario import Scenario
from services.simulator.traits import Traits, draw_traits

FEATURES = (
    "people-search",
    "polls",
    "event-calendar",
    "mobile-app",
    "communities",
    "wiki-pages",
    "auto-translation",
    "kudos-cards",
    "newsletter-builder",
    "desk-booking",
    "video-posts",
    "smart-notifications",
)
TAGS = (
    "announcement",
    "onboarding",
    "it-support",
    "travel",
    "expenses",
    "events",
    "product",
    "customers",
    "sustainability",
    "wellbeing",
    "tools",
    "process",
    "kudos",
    "hiring",
    "training",
)
PROFILE_FIELDS = ("job_title", "location", "about", "skills", "photo_url", "phone")
REACTIONS = (Reaction.LIKE, Reaction.CELEBRATE, Reaction.INSIGHTFUL, Reaction.SUPPORT, Reaction.FUNNY)
REACTION_WEIGHTS = (0.6, 0.12, 0.12, 0.1, 0.06)
FEED_DAYS = 7  # posts stay in people's feeds this long
POST_AGEING = 0.6  # a post's pull on readers shrinks by this factor per day
OPEN_QUESTION_DAYS = 5
ACCEPT_WITHIN_DAYS = 10
GOOD_ANSWER = 0.4
WISHLIST_QUESTIONS = 12
NAME_QUESTIONS = 3
PULSE_QUESTIONS = 8


@dataclass(slots=True)
class _Post:
    post_id: str
    author: Employee
    created_at: dt.datetime
    day: int
    weight: float


@dataclass(slots=True)
class _Answer:
    answer_id: str
    author: Employee
    created_at: dt.datetime
    quality: float


@dataclass(slots=True)
class _Question:
    question_id: str
    asker: Employee
    target_department_id: str
    created_at: dt.datetime
    day: int
    answers: list[_Answer] = field(default_factory=list)
    decided: bool = False


@dataclass(slots=True)
class _Pool:
    """Posts weighted by how much they draw readers, for O(log n) weighted picks."""

    posts: list[_Post]
    cumulative: list[float]

    @classmethod
    def of(cls, posts: list[_Post], today: int) -> _Pool:
        weights = (p.weight * POST_AGEING ** (today - p.day) for p in posts)
        return cls(posts, list(itertools.accumulate(weights)))

    def pick(self, rng: random.Random) -> _Post | None:
        if not self.posts:
            return None
        return self.posts[bisect.bisect_right(self.cumulative, rng.random() * self.cumulative[-1])]


class Simulation:
    """The company's behaviour over the scenario's timeline; `days()` yields each day's actions in time order."""

    def __init__(self, scenario: Scenario, population: Population) -> None:
        self.scenario = scenario
        self.population = population
        self.launch = scenario.require_launch_date()
        self.start = self.launch - dt.timedelta(days=scenario.pre_launch_days)
        self._rng = random.Random(f"{scenario.seed}:behaviour")
        self._prefix = scenario.id_prefix
        self._seq = itertools.count(1)
        self._ids = {k: itertools.count(1) for k in ("p", "q", "c", "a", "f")}
        people = population.employees
        self.traits: dict[str, Traits] = {e.employee_id: draw_traits(e, self._rng, scenario.activity) for e in people}
        self._off = {e.employee_id: self._vacations() for e in people}
        self._circle = {e.employee_id: self._circle_of(e) for e in people}
        self._ring = {m: g.members for g in population.groups for m in g.members}
        self._profile: dict[str, list[str]] = {e.employee_id: [] for e in people}
        self._departments = [d.department_id for d in population.departments]
        self._scheduled: dict[int, list[Action]] = {}
        self._profile_fill: dict[int, list[Employee]] = {}
        self._trials: dict[int, list[tuple[Employee, str]]] = {}
        self._recent: list[_Post] = []
        self._questions: list[_Question] = []
        # (actor, post, None) once a person reacted to a post at all; (actor, post, kind) per reaction kind.
        self._reacted: set[tuple[str, str, Reaction | None]] = set()
        self._plan_pre_launch()
        self._plan_live()

    # ----- timeline -------------------------------------------------------------------------------------------

    def days(self) -> Iterator[SimulatedDay]:
        """The timeline, day by day (one pass: the simulation's state moves on as it is consumed)."""
        for index in range(self.scenario.total_days):
            date = self.start + dt.timedelta(days=index)
            phase = Phase.PRE_LAUNCH if index < self.scenario.pre_launch_days else Phase.LIVE
            actions = list(self._scheduled.pop(index, []))
            if phase is Phase.LIVE:
                actions.extend(self._live_day(index, date))
            actions.sort(key=lambda a: (a.occurred_at, a.source_id))
            yield SimulatedDay(index, date, phase, tuple(actions))

    def _live_day(self, index: int, date: dt.date) -> list[Action]:
        out: list[Action] = []
        active = [e for e in self.population.employees if self._is_active(e, index, date)]
        present = [e for e in self.population.employees if index not in self._off[e.employee_id]]
        self._fill_profiles(index, date, out)
        self._update_profiles(active, date, out)
        todays = self._create_content(active, index, date, out)
        self._recent = [p for p in self._recent if index - p.day < FEED_DAYS] + todays
        self._react_and_comment(active, index, date, out)
        self._rings(todays, index, date, out)
        self._self_promotion(todays, date, out)
        self._answer(active, index, date, out)
        self._accept(present, index, date, out)
        self._try_features(index, date, out)
        self._suggest(active, date, out)
        return out

    def _is_active(self, e: Employee, index: int, date: dt.date) -> bool:
        if index in self._off[e.employee_id]:
            return False
        t = self.traits[e.employee_id]
        chance = t.active * (t.weekend if date.weekday() >= 5 else 1.0)
        live_day = index - self.scenario.pre_launch_days
        chance *= 1.0 + 0.4 * math.exp(-live_day / 10)  # launch buzz fades over the first weeks
        return self._rng.random() < min(chance, 0.98)

    def _vacations(self) -> set[int]:
        """Days off: one or two holidays of one to three weeks, spread over the timeline."""
        days: set[int] = set()
        total = self.scenario.total_days
        for _ in range(_poisson(self._rng, total / 120)):
            length = self._rng.randint(5, 18)
            first = self._rng.randrange(total)
            days.update(range(first, min(total, first + length)))
        return days

    def _circle_of(self, e: Employee) -> list[str]:
        """Colleagues a person follows: their team, some of their department, a few people elsewhere."""
        t = self.traits[e.employee_id]
        if t.cross_department_contacts == 0 and t.reach_circle == 0:
            return []
        team = [m.employee_id for m in self.population.by_team[e.team_id] if m.employee_id != e.employee_id]
        dept = [m.employee_id for m in self.population.by_department[e.department_id] if m.employee_id not in team]
        others = [m.employee_id for m in self.population.employees if m.department_id != e.department_id]
        circle = team + self._rng.sample(dept, min(len(dept), self._rng.randint(2, 6)))
        circle += self._rng.sample(others, min(len(others), t.cross_department_contacts))
        return [c for c in circle if c != e.employee_id]

    # ----- helpers --------------------------------------------------------------------------------------------

    def _action(self, kind: ActionKind, actor: Employee, at: dt.datetime, **fields: object) -> Action:
        return Action(f"{self._prefix}-a{next(self._seq):08d}", kind, actor.employee_id, at, **fields)  # type: ignore[arg-type]

    def _new_id(self, kind: str) -> str:
        return f"{self._prefix}-{kind}{next(self._ids[kind]):07d}"

    def _time(self, date: dt.date) -> dt.datetime:
        """A moment of a working day: mostly office hours, some evenings, a few early birds."""
        r = self._rng.random()
        low, high = (8.0, 18.0) if r < 0.8 else (18.0, 22.5) if r < 0.95 else (6.0, 8.0)
        hour = self._rng.uniform(low, high)
        return dt.datetime.combine(date, dt.time(), tzinfo=dt.UTC) + dt.timedelta(seconds=int(hour * 3600))

    def _after(self, moment: dt.datetime, date: dt.date) -> dt.datetime:
        """A moment after `moment` on the same day (a reply comes minutes to hours later)."""
        end = dt.datetime.combine(date + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)
        if moment < end - dt.timedelta(days=1):
            return self._time(date)
        delay = dt.timedelta(minutes=self._rng.expovariate(1 / 90))
        if moment + delay >= end:
            delay = (end - moment) * self._rng.random()
        return moment + max(delay, dt.timedelta(seconds=1))

    def _length(self, typical: int) -> int:
        return max(10, int(typical * self._rng.lognormvariate(0.0, 0.5)))

    def _tags(self) -> tuple[str, ...]:
        return tuple(self._rng.sample(TAGS, self._rng.randint(1, 3)))

    def _weighted_sample(self, people: list[Employee], weight: dict[str, float], k: int) -> list[Employee]:
        """k people drawn without replacement, more likely the heavier they weigh (Efraimidis-Spirakis)."""
        keyed = []
        for e in people:
            w = weight[e.employee_id]
            if w > 0:
                keyed.append((self._rng.random() ** (1.0 / w), e.employee_id, e))
        keyed.sort(key=lambda x: (x[0], x[1]), reverse=True)
        return [e for _, _, e in keyed[:k]]

    def _workdays(self, first: int, last: int) -> list[int]:
        return [i for i in range(first, last + 1) if (self.start + dt.timedelta(days=i)).weekday() < 5]

    def _date(self, index: int) -> dt.date:
        return self.start + dt.timedelta(days=index)

    # ----- pre-launch: surveys, workshops, interviews ---------------------------------------------------------

    def _plan_pre_launch(self) -> None:
        pre = self.scenario.pre_launch_days
        people = list(self.population.employees)
        self._plan_survey("wishlist", round(pre * 0.1), round(pre * 0.55), WISHLIST_QUESTIONS, True, 1.0)
        self._plan_survey("intranet-name", round(pre * 0.45), pre - 1, NAME_QUESTIONS, True, 1.0)
        workshop_days = self._workdays(round(pre * 0.25), pre - 1)
        count = max(2, self.scenario.departments // 2 + 2)
        capacity = min(20, max(6, round(len(people) * 0.012)))
        weight = {e.employee_id: self.traits[e.employee_id].workshop_weight for e in people}
        for n in range(count):
            index = workshop_days[n * len(workshop_days) // count]
            at = dt.datetime.combine(self._date(index), dt.time(10 if n % 2 == 0 else 14), tzinfo=dt.UTC)
            present = [e for e in people if index not in self._off[e.employee_id]]
            session = f"{self._prefix}-workshop{n + 1:02d}"
            for e in self._weighted_sample(present, weight, capacity):
                self._schedule(index, self._session(e, at, session, SessionKind.WORKSHOP))
        interview_days = self._workdays(round(pre * 0.1), pre - 1)
        weight = {e.employee_id: self.traits[e.employee_id].interview_weight for e in people}
        interviewees = self._weighted_sample(people, weight, 2 * self.scenario.departments)
        for n, e in enumerate(interviewees):
            free = [i for i in interview_days if i not in self._off[e.employee_id]] or interview_days
            index = self._rng.choice(free)
            at = dt.datetime.combine(self._date(index), dt.time(9 + n % 8), tzinfo=dt.UTC)
            self._schedule(index, self._session(e, at, f"{self._prefix}-interview{n + 1:03d}", SessionKind.INTERVIEW))

    def _session(self, e: Employee, at: dt.datetime, session: str, kind: SessionKind) -> Action:
        speaks = self.traits[e.employee_id].contributes
        contributed = self._rng.random() < (0.9 if kind is SessionKind.INTERVIEW else speaks)
        return self._action(
            ActionKind.WORKSHOP,
            e,
            at,
            item_id=session,
            session_kind=kind,
            pre_launch=True,
            contributed=contributed,
        )

    def _plan_survey(self, name: str, first: int, last: int, questions: int, pre_launch: bool, share: float) -> None:
        for e in self.population.employees:
            t = self.traits[e.employee_id]
            if self._rng.random() >= t.survey * share:
                continue
            days = [i for i in range(first, last + 1) if i not in self._off[e.employee_id]]
            if not days:
                continue
            index = self._rng.choice(days)
            thorough = t.survey >= 0.9
            answered = self._rng.randint(questions - 2 if thorough else 1, questions) if questions > 2 else questions
            self._schedule(
                index,
                self._action(
                    ActionKind.SURVEY,
                    e,
                    self._time(self._date(index)),
                    item_id=f"{self._prefix}-survey-{name}",
                    pre_launch=pre_launch,
                    answered_questions=max(1, answered),
                ),
            )

    def _schedule(self, index: int, action: Action) -> None:
        self._scheduled.setdefault(index, []).append(action)

    # ----- live: plans made at launch (profiles, feature adoption, pulse survey) -------------------------------

    def _plan_live(self) -> None:
        pre, live = self.scenario.pre_launch_days, self.scenario.live_days
        last = pre + live - 1
        for e in self.population.employees:
            t = self.traits[e.employee_id]
            if self._rng.random() < t.profile_fill:
                index = pre + min(live - 1, int(self._rng.uniform(0, t.profile_fill_within_days)))
                self._profile_fill.setdefault(self._present_on_or_after(e, index, last), []).append(e)
        for n, release in enumerate(range(pre, last + 1, self.scenario.features_every_days)):
            feature = FEATURES[n % len(FEATURES)] + (f"-v{n // len(FEATURES) + 1}" if n >= len(FEATURES) else "")
            for e in self.population.employees:
                t = self.traits[e.employee_id]
                if self._rng.random() < t.trial:
                    index = release + int(self._rng.expovariate(1 / t.trial_delay_days))
                    index = self._present_on_or_after(e, index, last)
                    if index <= last:
                        self._trials.setdefault(index, []).append((e, feature))
        if live >= 28:
            first = pre + live // 2
            self._plan_survey("pulse", first, min(last, first + 9), PULSE_QUESTIONS, False, 0.8)

    def _present_on_or_after(self, e: Employee, index: int, last: int) -> int:
        while index <= last and index in self._off[e.employee_id]:
            index += 1
        return index

    # ----- live: profile care ---------------------------------------------------------------------------------

    def _fill_profiles(self, index: int, date: dt.date, out: list[Action]) -> None:
        for e in self._profile_fill.pop(index, []):
            lo, hi = self.traits[e.employee_id].profile_fields
            fields = sorted(self._rng.sample(PROFILE_FIELDS, self._rng.randint(lo, hi)), key=PROFILE_FIELDS.index)
            self._profile[e.employee_id] = fields
            out.append(self._profile_action(e, self._time(date), tuple(fields)))

    def _update_profiles(self, active: list[Employee], date: dt.date, out: list[Action]) -> None:
        for e in active:
            filled = self._profile[e.employee_id]
            if not filled or self._rng.random() >= self.traits[e.employee_id].profile_updates:
                continue
            empty = [f for f in PROFILE_FIELDS if f not in filled]
            if empty and self._rng.random() < 0.5:
                changed = [self._rng.choice(empty)]
                filled.append(changed[0])
                filled.sort(key=PROFILE_FIELDS.index)
            else:
                changed = self._rng.sample(filled, min(len(filled), self._rng.randint(1, 2)))
            out.append(self._profile_action(e, self._time(date), tuple(sorted(changed, key=PROFILE_FIELDS.index))))

    def _profile_action(self, e: Employee, at: dt.datetime, changed: tuple[str, ...]) -> Action:
        completeness = round(len(self._profile[e.employee_id]) / len(PROFILE_FIELDS), 4)
        return self._action(ActionKind.PROFILE_UPDATE, e, at, completeness=completeness, changed_fields=changed)

    # ----- live: posts and questions ---------------------------------------------------------------------------

    def _create_content(self, active: list[Employee], index: int, date: dt.date, out: list[Action]) -> list[_Post]:
        todays: list[_Post] = []
        for e in active:
            t = self.traits[e.employee_id]
            posts = _poisson(self._rng, t.posts)
            if t.burst_chance and date.weekday() < 5 and self._rng.random() < t.burst_chance:
                posts += self._rng.randint(*t.burst_posts)
            for _ in range(posts):
                post_id = self._new_id("p")
                at = self._time(date)
                audience = "" if self._rng.random() < t.company_wide_posts else e.department_id
                out.append(
                    self._action(
                        ActionKind.POST,
                        e,
                        at,
                        post_id=post_id,
                        audience_department_id=audience,
                        body_length=self._length(t.post_length),
                        tags=self._tags(),
                    )
                )
                weight = t.appeal * self._rng.lognormvariate(0.0, 0.4)
                todays.append(_Post(post_id, e, at, index, weight))
            for _ in range(_poisson(self._rng, t.questions)):
                self._ask(e, index, date, out)
        todays.sort(key=lambda p: (p.created_at, p.post_id))
        return todays

    def _ask(self, e: Employee, index: int, date: dt.date, out: list[Action]) -> None:
        r = self._rng.random()
        if r < 0.6:
            target = e.department_id
        elif r < 0.85:
            target = self._rng.choice(self._departments)
        else:
            target = ""
        question_id = self._new_id("q")
        at = self._time(date)
        out.append(
            self._action(
                ActionKind.QUESTION,
                e,
                at,
                post_id=question_id,
                audience_department_id=target,
                body_length=self._length(250),
                tags=self._tags(),
            )
        )
        self._questions.append(_Question(question_id, e, target, at, index))

    # ----- live: reactions and comments ------------------------------------------------------------------------

    def _react_and_comment(self, active: list[Employee], index: int, date: dt.date, out: list[Action]) -> None:
        if not self._recent:
            return
        company = _Pool.of(self._recent, index)
        by_dept: dict[str, list[_Post]] = {}
        by_author: dict[str, list[_Post]] = {}
        for p in self._recent:
            by_dept.setdefault(p.author.department_id, []).append(p)
            by_author.setdefault(p.author.employee_id, []).append(p)
        dept_pools = {d: _Pool.of(posts, index) for d, posts in by_dept.items()}
        for e in active:
            t = self.traits[e.employee_id]
            if e.persona is Persona.REACT_ONLY:
                self._react_to_anything(e, t, date, out)
                continue
            for _ in range(_poisson(self._rng, t.reactions)):
                post = self._choose_post(e, t, company, dept_pools, by_author)
                if post is not None and (e.employee_id, post.post_id, None) not in self._reacted:
                    out.append(self._reaction(e, post, date))
            for _ in range(_poisson(self._rng, t.comments)):
                post = self._choose_post(e, t, company, dept_pools, by_author)
                if post is not None:
                    out.append(self._comment(e, post, date, 120 if t.post_length > 150 else 20))

    def _react_to_anything(self, e: Employee, t: Traits, date: dt.date, out: list[Action]) -> None:
        """Every reaction button on whatever is new, until the daily quota is used up."""
        wanted = _poisson(self._rng, t.reactions)
        fresh = [
            (p, r)
            for p in self._recent
            for r in REACTIONS
            if p.author.employee_id != e.employee_id and (e.employee_id, p.post_id, r) not in self._reacted
        ]
        for post, reaction in self._rng.sample(fresh, min(wanted, len(fresh))):
            out.append(self._reaction(e, post, date, reaction))

    def _choose_post(
        self,
        e: Employee,
        t: Traits,
        company: _Pool,
        dept_pools: dict[str, _Pool],
        by_author: dict[str, list[_Post]],
    ) -> _Post | None:
        """A post this person would engage with: from someone they follow, their department, or anywhere."""
        for _ in range(3):
            r = self._rng.random()
            post: _Post | None = None
            if r < t.reach_circle and self._circle[e.employee_id]:
                author = self._rng.choice(self._circle[e.employee_id])
                if author in by_author:
                    post = self._rng.choice(by_author[author])
            if post is None and r < t.reach_circle + t.reach_department and e.department_id in dept_pools:
                post = dept_pools[e.department_id].pick(self._rng)
            if post is None:
                post = company.pick(self._rng)
            if post is not None and post.author.employee_id != e.employee_id:
                return post
        return None

    def _reaction(self, e: Employee, post: _Post, date: dt.date, reaction: Reaction | None = None) -> Action:
        reaction = reaction or self._rng.choices(REACTIONS, REACTION_WEIGHTS)[0]
        self._reacted.add((e.employee_id, post.post_id, None))
        self._reacted.add((e.employee_id, post.post_id, reaction))
        return self._action(
            ActionKind.REACTION,
            e,
            self._after(post.created_at, date),
            post_id=post.post_id,
            counterpart_id=post.author.employee_id,
            counterpart_department_id=post.author.department_id,
            reaction=reaction,
        )

    def _comment(self, e: Employee, post: _Post, date: dt.date, typical_length: int) -> Action:
        return self._action(
            ActionKind.COMMENT,
            e,
            self._after(post.created_at, date),
            post_id=post.post_id,
            item_id=self._new_id("c"),
            counterpart_id=post.author.employee_id,
            counterpart_department_id=post.author.department_id,
            body_length=self._length(typical_length),
        )

    def _rings(self, todays: list[_Post], index: int, date: dt.date, out: list[Action]) -> None:
        """Ring members like (and "+1") nearly every post of their ring mates, soon after it appears."""
        for post in todays:
            mates = self._ring.get(post.author.employee_id, ())
            for mate_id in mates:
                if mate_id == post.author.employee_id or index in self._off[mate_id]:
                    continue
                mate = self.population.by_id[mate_id]
                t = self.traits[mate_id]
                if (mate_id, post.post_id, None) not in self._reacted and self._rng.random() < t.ring_reaction:
                    out.append(self._reaction(mate, post, date, self._rng.choice((Reaction.LIKE, Reaction.CELEBRATE))))
                if self._rng.random() < t.ring_comment:
                    out.append(self._comment(mate, post, date, 15))

    def _self_promotion(self, todays: list[_Post], date: dt.date, out: list[Action]) -> None:
        """Self-promoters bump their own posts with comments (the intranet does not let anyone like their own)."""
        for post in todays:
            t = self.traits[post.author.employee_id]
            if t.self_comment and self._rng.random() < t.self_comment:
                out.append(self._comment(post.author, post, date, 40))

    # ----- live: questions answered and accepted ---------------------------------------------------------------

    def _answer(self, active: list[Employee], index: int, date: dt.date, out: list[Action]) -> None:
        self._questions = [q for q in self._questions if index - q.day < ACCEPT_WITHIN_DAYS and not q.decided]
        open_questions = [q for q in self._questions if index - q.day < OPEN_QUESTION_DAYS]
        if not open_questions:
            return
        for e in active:
            t = self.traits[e.employee_id]
            for _ in range(_poisson(self._rng, t.answers)):
                candidates = [
                    q
                    for q in open_questions
                    if q.asker.employee_id != e.employee_id and all(a.author is not e for a in q.answers)
                ]
                own = [q for q in candidates if _concerns(q, e.department_id)]
                if self._rng.random() < t.own_department_answers:
                    candidates = own
                if not candidates:
                    continue
                weights = [1.0 / (1 + len(q.answers)) for q in candidates]
                question = self._rng.choices(candidates, weights)[0]
                at = self._after(question.created_at, date)
                answer = _Answer(self._new_id("a"), e, at, t.expertise + self._rng.gauss(0.0, 0.15))
                question.answers.append(answer)
                out.append(
                    self._action(
                        ActionKind.ANSWER,
                        e,
                        at,
                        post_id=question.question_id,
                        item_id=answer.answer_id,
                        counterpart_id=question.asker.employee_id,
                        counterpart_department_id=question.asker.department_id,
                        body_length=self._length(int(250 + 350 * t.expertise)),
                    )
                )

    def _accept(self, present: list[Employee], index: int, date: dt.date, out: list[Action]) -> None:
        """Askers come back a day or more later and accept the best answer if it helped them."""
        around = {e.employee_id for e in present}
        for q in self._questions:
            if q.decided or q.day >= index or not q.answers or q.asker.employee_id not in around:
                continue
            if self._rng.random() < 0.4:
                continue  # not looked at today
            q.decided = True
            best = max(q.answers, key=lambda a: a.quality)
            if best.quality < GOOD_ANSWER or self._rng.random() >= self.traits[q.asker.employee_id].diligence:
                continue
            at = max(self._time(date), best.created_at + dt.timedelta(minutes=1))
            out.append(
                self._action(
                    ActionKind.ACCEPT,
                    q.asker,
                    at,
                    post_id=q.question_id,
                    item_id=best.answer_id,
                    counterpart_id=best.author.employee_id,
                    counterpart_department_id=best.author.department_id,
                )
            )

    # ----- live: new features, feedback, suggestions -----------------------------------------------------------

    def _try_features(self, index: int, date: dt.date, out: list[Action]) -> None:
        for e, feature in self._trials.pop(index, []):
            at = self._time(date)
            out.append(self._action(ActionKind.FEATURE_TRIAL, e, at, item_id=feature))
            if self._rng.random() < self.traits[e.employee_id].feedback:
                kind = self._rng.choices(
                    (FeedbackKind.FEEDBACK, FeedbackKind.SUGGESTION, FeedbackKind.BUG_REPORT), (0.5, 0.3, 0.2)
                )[0]
                out.append(self._feedback(e, self._after(at, date), kind, feature))

    def _suggest(self, active: list[Employee], date: dt.date, out: list[Action]) -> None:
        for e in active:
            if self._rng.random() < self.traits[e.employee_id].suggestions:
                out.append(self._feedback(e, self._time(date), FeedbackKind.SUGGESTION, "intranet"))

    def _feedback(self, e: Employee, at: dt.datetime, kind: FeedbackKind, topic: str) -> Action:
        return self._action(
            ActionKind.FEEDBACK,
            e,
            at,
            item_id=self._new_id("f"),
            feedback_kind=kind,
            topic=topic,
            body_length=self._length(300),
        )


def _concerns(question: _Question, department_id: str) -> bool:
    """The question is about this department's work (addressed to it, or a colleague's company-wide one)."""
    if question.target_department_id:
        return question.target_department_id == department_id
    return question.asker.department_id == department_id


def _poisson(rng: random.Random, mean: float) -> int:
    """Poisson draw (Knuth for small means, a normal approximation for large ones)."""
    if mean <= 0:
        return 0
    if mean > 30:
        return max(0, round(rng.gauss(mean, math.sqrt(mean))))
    limit, k, p = math.exp(-mean), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


def all_actions(scenario: Scenario, population: Population) -> Iterator[Action]:
    """Every action of the scenario in time order (convenience for tests and summaries)."""
    for day in Simulation(scenario, population).days():
        yield from day.actions
