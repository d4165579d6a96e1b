"""Which actions go through the interactive feed API instead of ingestion (pure).

Most of the history is imported (IngestInteractions keeps the simulated event time). To exercise the real
per-employee path too, a handful of actions from the end of the timeline are replayed at the end of the run
as CreatePost, AddComment and AddReaction calls with the actors' own tokens: the last week's posts that drew
the most replies, and those replies. They get the server's time, which is why they come from the very end
of the history: "now" follows it.
"""

from __future__ import annotations

from collections.abc import Sequence

from services.simulator.actions import Action, ActionKind, SimulatedDay

INTERACTIVE_KINDS = (ActionKind.POST, ActionKind.COMMENT, ActionKind.REACTION)


def choose_interactive(tail: Sequence[SimulatedDay], posts: int, budget: int) -> list[Action]:
    """The `posts` posts of `tail` that drew the most comments and reactions (latest first on ties) and
    those follow-ups, at most `budget` actions in all, in time order (each post before what answers it)."""
    if posts <= 0 or budget <= 0:
        return []
    actions = [a for day in tail for a in day.actions]
    follow_ups: dict[str, list[Action]] = {a.post_id: [] for a in actions if a.kind is ActionKind.POST}
    for a in actions:
        if a.kind in (ActionKind.COMMENT, ActionKind.REACTION) and a.post_id in follow_ups:
            follow_ups[a.post_id].append(a)
    candidates = [a for a in actions if a.kind is ActionKind.POST]
    candidates.sort(key=lambda a: (len(follow_ups[a.post_id]), a.occurred_at, a.source_id), reverse=True)
    chosen_posts = candidates[: min(posts, budget)]
    replies = sorted(
        (r for p in chosen_posts for r in follow_ups[p.post_id]), key=lambda a: (a.occurred_at, a.source_id)
    )
    chosen = chosen_posts + replies[: budget - len(chosen_posts)]
    return sorted(chosen, key=lambda a: (a.occurred_at, a.source_id))
