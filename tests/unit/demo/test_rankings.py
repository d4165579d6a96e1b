"""The score as a ranking would show it: no gamer above a genuine ambassador at work on any leaderboard
(docs/tuning.md, "The score against gaming"), on the default simulated company, offline."""

from __future__ import annotations

import datetime as dt

from services.demo import rankings
from services.engagement.model.config import load_model
from services.simulator.scenario import preset

TODAY = dt.date(2026, 11, 26)
CFG = load_model()


def test_no_gamer_ranks_above_an_ambassador_at_work_on_any_leaderboard() -> None:
    """Every window with a board (30 days, 100 days, the decayed total): below the lowest-ranked ambassador at
    work, every fortnight after launch. The 7-day window has no board and is not judged."""
    found = rankings.standings(preset("default", 42), CFG, TODAY, every_days=14)
    assert {s.window for s in found} == set(CFG.leaderboards.windows)
    assert "7d" not in CFG.leaderboards.windows
    kinds = {s.gamer_kind for s in found}
    assert kinds <= {"gamer_reaction_ring", "gamer_self_promoter", "gamer_react_only", "gamer_spam_poster"}
    for s in found:
        assert s.gamers_above == 0, s
        assert s.gamer_score < s.ambassador_score, s
    assert "| fail |" not in rankings.table(found)
