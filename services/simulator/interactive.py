"""Which actions go through the interactive feed API instead of ingestion (pure).

Most of the history is imported (IngestInteractions keeps the simulated event time). To exercise the real
per-employee path too, a handful of actions from the end of the timeline are replayed at the end of the run
as CreatePost, AddComment and AddReaction calls with the actors' own tokens. Those get the server's time,
which is why they come from the very end of the history: "now" follows it.
"""

from __future__ import annotations

from collections.abc import Sequence

from services.simulator.actions import Action, ActionKind, SimulatedDay

INTERACTIVE_KINDS = (ActionKind.POST, ActionKind.COMMENT, ActionKind.REACTION)


def choose_interactive(tail: Sequence[SimulatedDay], posts: int, budget: int) -> list[Action]:
    """Up to `posts` posts of the latest day in `tail` that has posts, and the comments and reactions on them
    from the tail, at most `budget` actions in all, in time order (each post before what answers it)."""
    if posts <= 0 or budget <= 0:
        return []
    latest = next((day for day in reversed(tail) if any(a.kind is ActionKind.POST for a in day.actions)), None)
    if latest is None:
        return []
    chosen_posts = [a for a in latest.actions if a.kind is ActionKind.POST][-posts:][:budget]
    post_ids = {a.post_id for a in chosen_posts}
    follow_ups = [
        a
        for day in tail
        for a in day.actions
        if a.kind in (ActionKind.COMMENT, ActionKind.REACTION) and a.post_id in post_ids
    ]
    chosen = chosen_posts + follow_ups[: budget - len(chosen_posts)]
    return sorted(chosen, key=lambda a: (a.occurred_at, a.source_id))
