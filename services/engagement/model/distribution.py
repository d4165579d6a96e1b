"""The company's distribution of figures among its active employees, as of one day (pure: no I/O).

The publisher computes it once a day of event time is complete, from every active employee's figures as of
that day's end, and sends it to every partition of the engagement topic after the day's ScoreChanged
(decision 0025). Badge criteria with a percentile compare a person with it, so every consumer of every
partition, a replayed history and the offline harness judge a day with the same numbers. It holds numbers at
whole percentiles over at least `min_population` people, never who reached them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from catalyst.events.v1 import scores_pb2

from services.engagement.model.config import Distribution as DistributionRule

QUANTILES = 101  # the value at every whole percentile, 0..100


@dataclass(frozen=True)
class Distribution:
    """`quantiles[metric][p]` is the value the top (100 - p) % of the `population` active employees reach as
    of the end of `day`; empty when fewer than the minimum population were active."""

    day: int
    population: int
    min_population: int
    quantiles: dict[str, tuple[float, ...]] = field(default_factory=dict)

    def to_pb(self) -> scores_pb2.FiguresDistribution:
        return scores_pb2.FiguresDistribution(
            day=self.day,
            population=self.population,
            min_population=self.min_population,
            quantiles={m: scores_pb2.Quantiles(values=v) for m, v in self.quantiles.items()},
        )

    @classmethod
    def from_pb(cls, msg: scores_pb2.FiguresDistribution) -> Distribution:
        return cls(msg.day, msg.population, msg.min_population, {m: tuple(q.values) for m, q in msg.quantiles.items()})


def distribution(day: int, everyone: Iterable[Mapping[str, float]], rule: DistributionRule) -> Distribution:
    """The quantiles of every metric the rule names among the employees whose `active_signal` reaches
    `active_min`; `everyone` holds each employee's flattened figures (`figures.flatten`) as of `day`."""
    columns: dict[str, list[float]] = {m: [] for m in rule.metrics}
    population = 0
    for figures in everyone:
        if float(figures.get(rule.active_signal, 0.0)) < rule.active_min:
            continue
        population += 1
        for metric, column in columns.items():
            column.append(float(figures.get(metric, 0.0)))
    if population < rule.min_population:
        return Distribution(day, population, rule.min_population)
    quantiles = {}
    for metric, values in columns.items():
        values.sort()
        quantiles[metric] = tuple(values[min(population - 1, (p * population) // 100)] for p in range(QUANTILES))
    return Distribution(day, population, rule.min_population, quantiles)
