"""One employee's state as written by one source partition, and how the parts add up.

Every event of partition p changes only the slice `{emp:<id>}:s` field `<topic tag>:<p>` of the employees it
touches, so each field has exactly one writer: the worker holding partition p. That worker can compute the
new slice itself and overwrite it (no read-modify-write in Redis), and the slice carries the offset of the
last event it contains (`mark`): replaying offsets at or below it changes nothing. Own activity arrives on the
employee's own partition; reach and accepted answers arrive from any partition. Readers merge the slices
(`merge`); the figures only depend on the merged counts, so slices may be pruned at any time.

Applying ops, pruning and the binary layout are compiled (`_slice.c`, where the layout is described): they
are the worker's hot path (docs/decisions/0006). This module is their Python face.
"""

from __future__ import annotations

from collections.abc import Iterable

from services.engagement._slice import SHIFT, Rules, Slice, decode, merge_tables, write
from services.engagement.config import ScoringConfig
from services.engagement.scoring import COUNTERS, EmployeeState

__all__ = ["SHIFT", "Rules", "Slice", "decode", "merge", "rules", "write"]

assert len(COUNTERS) <= 1 << SHIFT


def rules(cfg: ScoringConfig) -> Rules:
    """The scoring parameters applying ops needs, with the counters the slice code sets by itself."""
    return Rules(
        keep_days=cfg.keep_days,
        pair_cap=cfg.conversation.pair_cap_per_day,
        pair_memory_days=cfg.conversation.pair_memory_days,
        actions=COUNTERS.index("actions"),
        received=COUNTERS.index("received"),
        updates=COUNTERS.index("profile_updates"),
    )


def merge(parts: Iterable[Slice], opt_out: bool) -> EmployeeState:
    """The employee's whole state: counters summed, colleagues at their newest day (the tables, in C), own
    facts from the slice that saw the newest of them."""
    parts = list(parts)
    state = EmployeeState(opt_out=opt_out)
    state.days, state.givers, state.receivers = merge_tables(parts, len(COUNTERS))
    pilot = [0, 0, 0, 0]
    profile_ms = dept_ms = -1
    for part in parts:
        for i, count in enumerate(part.pilot):
            pilot[i] += count
        if part.profile_ms > profile_ms:
            profile_ms, state.completeness = part.profile_ms, part.completeness
        if part.dept_ms > dept_ms:
            dept_ms, state.department, state.name = part.dept_ms, part.department, part.name
        if part.top > state.as_of_day:
            state.as_of_day = part.top
        state.changes += part.count
    state.pilot = (pilot[0], pilot[1], pilot[2], pilot[3])
    return state
