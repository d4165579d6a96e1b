"""The scoring file (deploy/config/scoring.yaml): its schema, checked against the counters of `spec.py`.

Every process that reads scores (worker, publisher, query API, recognition's rule check) loads the file
through `load_model`, so one file states the score for all of them.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Annotated, Literal

from catalyst.events.v1 import scores_pb2
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    field_validator,
    model_validator,
)

from services.common.config_files import load_validated
from services.engagement.model import spec

ROOT = Path(__file__).resolve().parents[3]
DEFAULT_SCORING_FILE = ROOT / "deploy" / "config" / "scoring.yaml"
DECAYED = "decayed"
TOTAL = "total"  # the sum of the components, published beside them
# The components are the fields of the contract's ComponentScores (total is their sum).
COMPONENTS = tuple(f.name for f in scores_pb2.ComponentScores.DESCRIPTOR.fields if f.name != "total")
DAILY = {c.name for c in spec.COUNTERS}
TOTALS = {c.name for c in spec.TOTALS}
GROUPS = {count.group for rule in spec.RULES.values() for count in rule.counts if count.per is not None and count.group}
# Counters kept per colleague or value: the ones whose distinct colleagues a term or signal can count.
KEYED = {count.counter for rule in spec.RULES.values() for count in rule.counts if count.per is not None}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


def _known(names: list[str] | dict[str, float], known: set[str], what: str) -> None:
    unknown = sorted(set(names) - known)
    if unknown:
        raise ValueError(f"unknown {what} {unknown}; known: {sorted(known)}")


def _daily_counter(value: str) -> str:
    _known([value], DAILY, "counter")
    return value


def _keyed_counters(value: list[str]) -> list[str]:
    _known(value, KEYED, "counters kept per colleague")
    return value


DailyCounter = Annotated[str, AfterValidator(_daily_counter)]
KeyedCounters = Annotated[list[str], AfterValidator(_keyed_counters)]


class Windows(_Strict):
    days: dict[str, int]
    decay_half_life_days: float = Field(gt=0)

    @field_validator("days")
    @classmethod
    def _days(cls, value: dict[str, int]) -> dict[str, int]:
        if not value:
            raise ValueError("at least one window is needed")
        for name, days in value.items():
            if name == DECAYED:
                raise ValueError(f"'{DECAYED}' is the name of the decayed total, not a window")
            if not 1 <= days <= 400:
                raise ValueError(f"window {name}: days must be between 1 and 400")
        return value


class Diversity(_Strict):
    """The day points are multiplied by min(1, distinct colleagues of these counters in the window / distinct)^2."""

    counters: KeyedCounters
    distinct: int = Field(ge=1)


class Repeats(_Strict):
    """The points are multiplied by min(1, most * distinct colleagues of `counters` / their credited count) in the
    window: interactions count in full up to `most` per colleague on average."""

    counters: KeyedCounters
    most: float = Field(gt=0)


class Response(_Strict):
    """The points are multiplied by min(1, distinct colleagues of `counters` in the window / (colleagues *
    the `per` count in the window)): what is posted counts in full only as far as different colleagues respond."""

    counters: KeyedCounters
    per: DailyCounter
    colleagues: float = Field(gt=0)


class Reciprocity(_Strict):
    """The points are multiplied by min(1, distinct colleagues of `given` / (share * distinct colleagues of
    `received`)) in the window: what others do for the employee counts in full while the employee responds to
    at least `share` as many colleagues as respond to them."""

    given: KeyedCounters
    received: KeyedCounters
    share: float = Field(gt=0, le=1)


class Closed(_Strict):
    """A closed group: the points are multiplied by (1 - closed / open)^power in the window, where `open` sums over
    colleagues the days the employee gave them something (`given`), and `closed` sums over colleagues how far
    the days of exchange both ways (the fewer of the days the employee gave to them and the days they gave to the
    employee, `received`) go beyond `most` of that window. Ring members exchange with the same few mates nearly
    every day; colleagues in a genuine conversation, now and then."""

    given: KeyedCounters
    received: KeyedCounters
    most: dict[str, float] = Field(description="window -> days of exchange with one colleague that count in full")
    power: float = Field(1.0, gt=0)

    @field_validator("most")
    @classmethod
    def _positive(cls, value: dict[str, float]) -> dict[str, float]:
        if any(days <= 0 for days in value.values()):
            raise ValueError("most: every window's days are positive")
        return value


class Daily(_Strict):
    """Per day: sat(sum of weight * count, cap); or, with `count_cap`, linear in the counts scaled down so that
    they add up to at most count_cap a day."""

    daily: dict[str, float]
    cap: float | None = Field(None, gt=0)
    count_cap: int | None = Field(None, ge=1)
    diversity: Diversity | None = None
    repeats: Repeats | None = None
    response: Response | None = None
    reciprocity: Reciprocity | None = None
    closed: Closed | None = None
    as_: str = Field("", alias="as")

    @model_validator(mode="after")
    def _check(self) -> Daily:
        _known(self.daily, DAILY, "counters")
        if (self.cap is None) == (self.count_cap is None):
            raise ValueError("a daily term has exactly one of cap (a curve over the day) and count_cap")
        return self


class Weeks(_Strict):
    """points per ISO week with the counter in the window (decayed: by the week's newest such day)."""

    weeks: DailyCounter
    points: float = Field(ge=0)
    response: Response | None = None
    reciprocity: Reciprocity | None = None
    closed: Closed | None = None
    as_: str = Field("", alias="as")


class ColleagueSpec(_Strict):
    counters: KeyedCounters
    points: float = Field(ge=0)
    cap: float = Field(gt=0)


class Colleagues(_Strict):
    """points * sat(distinct colleagues of the counters in the window, cap); decayed: each colleague weighted by
    the newest day they appear."""

    colleagues: ColleagueSpec
    response: Response | None = None
    reciprocity: Reciprocity | None = None
    closed: Closed | None = None
    as_: str = Field(alias="as")


class Days(_Strict):
    """points * min(days with the counter in the window, most)."""

    days: DailyCounter
    points: float = Field(ge=0)
    most: int = Field(ge=0)
    as_: str = Field("", alias="as")


class Latest(_Strict):
    latest: Literal["completeness"]
    points: float = Field(ge=0)
    as_: str = Field("", alias="as")


class TotalTerm(_Strict):
    """min(sum of weight * all-time count, cap): the same in every window."""

    total: dict[str, float]
    cap: float = Field(ge=0)
    as_: str = Field("", alias="as")

    @field_validator("total")
    @classmethod
    def _counters(cls, value: dict[str, float]) -> dict[str, float]:
        _known(value, TOTALS, "all-time counters")
        return value


_TERM_KEYS = {"daily": "Daily", "weeks": "Weeks", "colleagues": "Colleagues", "days": "Days", "latest": "Latest"}


def _term_kind(value: object) -> str:
    """Which kind of term an entry is, by its first key (so an error names that kind's fields only)."""
    if isinstance(value, dict):
        return next((kind for key, kind in _TERM_KEYS.items() if key in value), "TotalTerm")
    return type(value).__name__


Term = Annotated[
    Annotated[Daily, Tag("Daily")]
    | Annotated[Weeks, Tag("Weeks")]
    | Annotated[Colleagues, Tag("Colleagues")]
    | Annotated[Days, Tag("Days")]
    | Annotated[Latest, Tag("Latest")]
    | Annotated[TotalTerm, Tag("TotalTerm")],
    Discriminator(_term_kind),
]


class Signal(_Strict):
    """One named figure; exactly one of the forms below."""

    sum: list[str] | None = None
    colleagues: list[str] | None = None
    days: int | None = Field(None, ge=1)
    weeks: str | None = None
    iso_weeks: int | None = Field(None, ge=1)
    active_days: int | None = Field(None, ge=1)
    active_weeks: int | None = Field(None, ge=1)
    ratio: tuple[str, str] | None = None
    latest: Literal["completeness"] | None = None
    total: list[str] | None = None

    @field_validator("sum", mode="before")
    @classmethod
    def _one_or_more(cls, value: object) -> object:
        return [value] if isinstance(value, str) else value

    @model_validator(mode="after")
    def _form(self) -> Signal:
        forms = {
            "sum": self.sum is not None and self.days is not None,
            "colleagues": self.colleagues is not None and self.days is not None,
            "weeks": self.weeks is not None and self.iso_weeks is not None,
            "active_days": self.active_days is not None,
            "active_weeks": self.active_weeks is not None,
            "ratio": self.ratio is not None,
            "latest": self.latest is not None,
            "total": self.total is not None,
        }
        if sum(forms.values()) != 1:
            raise ValueError(
                "a signal is one of {sum, days}, {colleagues, days}, {weeks, iso_weeks}, {active_days}, "
                "{active_weeks}, {ratio}, {latest}, {total}"
            )
        if self.sum is not None:
            _known(self.sum, DAILY, "counter")
        if self.colleagues is not None:
            _known(self.colleagues, KEYED, "counters kept per colleague")
        if self.weeks is not None:
            _known([self.weeks], DAILY, "counter")
        if self.total is not None:
            _known(self.total, TOTALS, "all-time counters")
        return self


class Leaderboards(_Strict):
    windows: list[str]
    size: int = Field(ge=1, description="company boards keep the top this many per window")
    department_size: int = Field(ge=1, description="department boards keep the top this many per window")


class Limits(_Strict):
    max_future_skew_hours: float = Field(ge=0)


class Distribution(_Strict):
    """Which figures the company's daily distribution covers and among whom (FiguresDistribution, decision 0025)."""

    active_signal: str = Field(description="who counts as an active employee")
    active_min: float = Field(gt=0, description="active: active_signal at least this")
    min_population: int = Field(ge=5, description="fewer active employees: no quantiles, nobody is compared")
    metrics: list[str] = Field(description="signals or score.<window>.<component> whose quantiles are published")


class ScoringModel(_Strict):
    """Every weight, window, cap, component and signal of the engagement score."""

    model_config = ConfigDict(extra="forbid", frozen=True, ignored_types=(cached_property,))

    windows: Windows
    caps: dict[str, int]
    components: dict[str, list[Term]]
    signals: dict[str, Signal]
    leaderboards: Leaderboards
    distribution: Distribution
    limits: Limits

    @model_validator(mode="after")
    def _consistent(self) -> ScoringModel:
        if set(self.caps) != GROUPS:
            raise ValueError(f"caps: give a cap for exactly the groups of spec.py {sorted(GROUPS)}")
        if any(cap < 1 for cap in self.caps.values()):
            raise ValueError("caps: every cap is at least 1")
        if set(self.components) != set(COMPONENTS):
            raise ValueError(f"components: exactly {list(COMPONENTS)} (the fields of ComponentScores)")
        names = self.window_names
        for component, terms in self.components.items():
            for term in terms:
                closed = getattr(term, "closed", None)
                if closed is not None and set(closed.most) != set(names):
                    raise ValueError(f"components.{component}: closed.most gives days for exactly the windows {names}")
        unknown = [w for w in self.leaderboards.windows if w not in names]
        if unknown:
            raise ValueError(f"leaderboards.windows: unknown windows {unknown}; known: {names}")
        for name, signal in self.signals.items():
            longest = max((n for n in (signal.days, signal.active_days) if n is not None), default=0)
            weeks = max(signal.iso_weeks or 0, signal.active_weeks or 0)
            if longest > self.keep_days or weeks * 7 > self.keep_days + 6:
                raise ValueError(f"signals.{name}: reaches further back than the longest window")
            if signal.ratio is not None:
                _known(list(signal.ratio), set(self.signals) - {name}, "signals")
        _known([self.distribution.active_signal], set(self.signals), "signals (distribution.active_signal)")
        for metric in self.distribution.metrics:
            self.metric(metric)
        return self

    @cached_property
    def keep_days(self) -> int:
        """Days of state kept per employee: the longest window."""
        return max(self.windows.days.values())

    @cached_property
    def window_names(self) -> list[str]:
        return [*self.windows.days, DECAYED]

    def metric(self, name: str) -> str:
        """A metric is a ScoreChanged signal name or `score.<window>.<component>` (components with their total)."""
        if name.startswith("score."):
            parts = name.split(".")
            components = (*COMPONENTS, TOTAL)
            if len(parts) != 3 or parts[1] not in self.window_names or parts[2] not in components:
                raise ValueError(
                    f"'{name}' is not score.<window>.<component> with window in {self.window_names} "
                    f"and component in {list(components)}"
                )
            return name
        if name not in self.signals:
            raise ValueError(f"unknown signal '{name}'; known: {sorted(self.signals)}")
        return name


def load_model(path: str | Path = DEFAULT_SCORING_FILE) -> ScoringModel:
    """Reads and validates the scoring file; any problem becomes one readable start-up error."""
    return load_validated(Path(path), ScoringModel, "scoring config")
