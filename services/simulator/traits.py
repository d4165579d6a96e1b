"""How each kind of person behaves: typical rates per persona, and each person's own variation.

The numbers describe people (how often they post, whom they talk to, whether they try new things), taken
from intranet adoption practice (the 90-9-1 participation pattern, champion networks), never from a scoring
formula. Rates are per *active* day: a person is active on a working day with probability `active`
(weekends scale it by `weekend`), and on an active day does Poisson(rate) of each action.
"""

from __future__ import annotations

import dataclasses
import random
from dataclasses import dataclass

from services.simulator.population import Employee, Persona


@dataclass(frozen=True, slots=True)
class Traits:
    active: float
    weekend: float = 0.08
    posts: float = 0.0
    questions: float = 0.0
    comments: float = 0.0
    reactions: float = 0.0
    answers: float = 0.0
    own_department_answers: float = 0.5
    # Where a person finds the posts they react to or comment on: their circle, their department, anywhere.
    reach_circle: float = 0.4
    reach_department: float = 0.4
    cross_department_contacts: int = 2
    company_wide_posts: float = 0.5
    post_length: int = 300
    appeal: float = 1.0  # how much colleagues want to engage with this person's posts
    expertise: float = 0.4  # quality of answers
    diligence: float = 0.5  # chance to accept a good answer to one's own question
    trial: float = 0.05  # chance to try a newly released feature
    trial_delay_days: float = 20.0
    feedback: float = 0.05  # chance to send feedback after a trial
    suggestions: float = 0.0  # unprompted suggestions per active day
    profile_fill: float = 0.5  # chance to fill the profile at all
    profile_fields: tuple[int, int] = (1, 3)
    profile_fill_within_days: int = 20
    profile_updates: float = 0.0  # profile edits per active day
    survey: float = 0.3
    workshop_weight: float = 1.0
    interview_weight: float = 0.5
    contributes: float = 0.4  # speaks up in workshops
    burst_chance: float = 0.0  # self-promoters: chance of a posting burst on a working day
    burst_posts: tuple[int, int] = (0, 0)
    self_comment: float = 0.0
    ring_reaction: float = 0.0
    ring_comment: float = 0.0
    specialty: str = ""


RATES: dict[Persona, Traits] = {
    # ~1.5 posts, ~35 reactions, ~10 comments, ~2.5 answers a week; wide network; first to try features.
    Persona.AMBASSADOR: Traits(
        active=0.85,
        weekend=0.1,
        posts=0.35,
        questions=0.04,
        comments=2.5,
        reactions=8.0,
        answers=0.6,
        own_department_answers=0.8,
        reach_circle=0.25,
        reach_department=0.3,
        cross_department_contacts=20,
        company_wide_posts=0.6,
        post_length=650,
        appeal=2.5,
        expertise=0.8,
        diligence=0.9,
        trial=0.9,
        trial_delay_days=3.0,
        feedback=0.6,
        suggestions=0.02,
        profile_fill=1.0,
        profile_fields=(5, 6),
        profile_fill_within_days=3,
        profile_updates=0.04,
        survey=0.95,
        workshop_weight=10.0,
        interview_weight=6.0,
        contributes=0.9,
    ),
    # ~0.6 posts, ~12 reactions, ~3.5 comments a week, mostly with their own team and department.
    Persona.REGULAR: Traits(
        active=0.6,
        posts=0.2,
        questions=0.08,
        comments=1.2,
        reactions=4.0,
        answers=0.15,
        own_department_answers=0.6,
        reach_circle=0.45,
        reach_department=0.4,
        cross_department_contacts=3,
        company_wide_posts=0.5,
        post_length=400,
        appeal=1.2,
        expertise=0.55,
        diligence=0.7,
        trial=0.35,
        trial_delay_days=12.0,
        feedback=0.15,
        suggestions=0.003,
        profile_fill=0.9,
        profile_fields=(3, 5),
        profile_fill_within_days=10,
        profile_updates=0.008,
        survey=0.55,
        workshop_weight=3.0,
        interview_weight=2.0,
        contributes=0.5,
    ),
    Persona.OCCASIONAL: Traits(
        active=0.25,
        posts=0.05,
        questions=0.06,
        comments=0.5,
        reactions=2.0,
        answers=0.03,
        reach_circle=0.4,
        reach_department=0.45,
        cross_department_contacts=2,
        company_wide_posts=0.4,
        post_length=300,
        appeal=1.0,
        expertise=0.4,
        diligence=0.5,
        trial=0.12,
        trial_delay_days=20.0,
        feedback=0.05,
        profile_fill=0.7,
        profile_fields=(1, 4),
        profile_fill_within_days=25,
        profile_updates=0.002,
        survey=0.3,
        workshop_weight=1.0,
        interview_weight=0.5,
        contributes=0.3,
    ),
    # Read, rarely react, ask a question now and then.
    Persona.LURKER: Traits(
        active=0.15,
        posts=0.005,
        questions=0.04,
        comments=0.05,
        reactions=0.6,
        answers=0.005,
        reach_circle=0.3,
        reach_department=0.4,
        cross_department_contacts=1,
        post_length=250,
        expertise=0.3,
        diligence=0.35,
        trial=0.04,
        trial_delay_days=30.0,
        feedback=0.01,
        profile_fill=0.35,
        profile_fields=(1, 2),
        profile_fill_within_days=40,
        survey=0.15,
        workshop_weight=0.2,
        interview_weight=0.3,
        contributes=0.2,
    ),
    # Team updates for their department, reacting to their own people.
    Persona.LEADING_MANAGER: Traits(
        active=0.75,
        posts=0.25,
        questions=0.02,
        comments=1.5,
        reactions=5.0,
        answers=0.2,
        own_department_answers=0.9,
        reach_circle=0.65,
        reach_department=0.3,
        cross_department_contacts=4,
        company_wide_posts=0.2,
        post_length=500,
        appeal=2.0,
        expertise=0.65,
        diligence=0.6,
        trial=0.25,
        trial_delay_days=10.0,
        feedback=0.1,
        profile_fill=1.0,
        profile_fields=(4, 6),
        profile_fill_within_days=7,
        profile_updates=0.005,
        survey=0.75,
        workshop_weight=4.0,
        interview_weight=3.0,
        contributes=0.6,
    ),
    Persona.ABSENT_MANAGER: Traits(
        active=0.1,
        posts=0.02,
        questions=0.005,
        comments=0.1,
        reactions=0.3,
        answers=0.01,
        own_department_answers=0.9,
        reach_circle=0.6,
        reach_department=0.3,
        cross_department_contacts=3,
        company_wide_posts=0.2,
        post_length=400,
        appeal=1.5,
        expertise=0.5,
        diligence=0.3,
        trial=0.05,
        trial_delay_days=30.0,
        feedback=0.02,
        profile_fill=0.7,
        profile_fields=(1, 3),
        profile_fill_within_days=30,
        survey=0.3,
        workshop_weight=0.5,
        interview_weight=2.0,
        contributes=0.4,
    ),
    # Short posts several times a day; ring mates like and "+1" nearly every one of them.
    Persona.RING_MEMBER: Traits(
        active=0.9,
        weekend=0.3,
        posts=1.5,
        questions=0.01,
        comments=0.2,
        reactions=1.0,
        answers=0.02,
        reach_circle=0.3,
        reach_department=0.4,
        cross_department_contacts=1,
        company_wide_posts=0.5,
        post_length=80,
        appeal=0.5,
        expertise=0.2,
        diligence=0.3,
        trial=0.1,
        trial_delay_days=20.0,
        feedback=0.02,
        profile_fill=0.6,
        profile_fields=(2, 4),
        profile_fill_within_days=20,
        profile_updates=0.003,
        survey=0.3,
        workshop_weight=0.8,
        interview_weight=0.3,
        contributes=0.3,
        ring_reaction=0.95,
        ring_comment=0.4,
    ),
    # Bursts of many posts, bump their own posts with comments, rarely reply to anyone; polished profile.
    Persona.SELF_PROMOTER: Traits(
        active=0.7,
        weekend=0.2,
        posts=0.3,
        questions=0.01,
        comments=0.15,
        reactions=1.0,
        answers=0.03,
        reach_circle=0.3,
        reach_department=0.3,
        cross_department_contacts=3,
        company_wide_posts=0.9,
        post_length=300,
        appeal=0.6,
        expertise=0.35,
        diligence=0.3,
        trial=0.2,
        trial_delay_days=10.0,
        feedback=0.1,
        profile_fill=1.0,
        profile_fields=(5, 6),
        profile_fill_within_days=5,
        profile_updates=0.03,
        survey=0.5,
        workshop_weight=4.0,
        interview_weight=1.0,
        contributes=0.8,
        burst_chance=0.12,
        burst_posts=(6, 15),
        self_comment=0.4,
    ),
    # Hundreds of likes a day on whatever is new; nothing else.
    Persona.REACT_ONLY: Traits(
        active=0.95,
        weekend=0.6,
        reactions=250.0,
        reach_circle=0.0,
        reach_department=0.0,
        cross_department_contacts=0,
        profile_fill=0.2,
        profile_fields=(1, 1),
        profile_fill_within_days=30,
        survey=0.05,
        workshop_weight=0.0,
        interview_weight=0.0,
        contributes=0.0,
        trial=0.0,
        feedback=0.0,
    ),
}

# Some regular contributors are as strong as an ambassador in one dimension, so no single count separates them.
SPECIALTIES: dict[str, dict[str, object]] = {
    "prolific_poster": {"posts": 0.6, "appeal": 1.4, "company_wide_posts": 0.7},
    "helper": {"answers": 0.8, "own_department_answers": 0.95, "expertise": 0.8},
    "networker": {"reactions": 11.0, "comments": 3.0, "reach_circle": 0.2, "cross_department_contacts": 20},
    "early_adopter": {"trial": 0.9, "trial_delay_days": 3.0, "feedback": 0.5, "suggestions": 0.015},
}
SPECIALIST_SHARE = 0.3

_VARIED = ("posts", "comments", "reactions", "answers", "appeal", "profile_updates")
# What a company's activity level scales: how often people do things, and their chances to try and tell.
_RATES = ("posts", "questions", "comments", "reactions", "answers", "suggestions", "profile_updates")
_CHANCES = ("trial", "feedback")


def draw_traits(employee: Employee, rng: random.Random, activity: float = 1.0) -> Traits:
    """This person's rates: the persona's typical numbers, each scaled by a personal factor (about +-30 %) and,
    except for gamers (who game as much in a quiet company as in a busy one), by the company's activity level."""
    base = RATES[employee.persona]
    if employee.persona is Persona.REGULAR and rng.random() < SPECIALIST_SHARE:
        specialty = rng.choice(sorted(SPECIALTIES))
        base = dataclasses.replace(base, specialty=specialty, **SPECIALTIES[specialty])  # type: ignore[arg-type]
    varied = {name: getattr(base, name) * rng.lognormvariate(0.0, 0.3) for name in _VARIED}
    person = dataclasses.replace(base, **varied)
    if activity == 1.0 or employee.persona.is_gamer:
        return person
    scaled = {name: getattr(person, name) * activity for name in _RATES}
    scaled |= {name: min(0.98, getattr(person, name) * activity) for name in _CHANCES}
    return dataclasses.replace(person, **scaled)
