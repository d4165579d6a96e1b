"""A holding as the recognition store keeps it: every field survives, and one stored before a field existed
still reads."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from services.recognition.rules import Holding, Tier
from services.recognition.store import decode_holding, encode_holding

T0 = datetime(2025, 3, 3, 12, 0, tzinfo=UTC)


def test_a_confirming_holding_round_trips() -> None:
    holding = Holding("creator", Tier.BRONZE, qualifying_since=T0)
    assert decode_holding(encode_holding(holding)) == holding


def test_a_holding_stored_before_the_confirmation_period_existed_reads() -> None:
    stored = json.loads(encode_holding(Holding("creator", Tier.BRONZE, held=True, granted_at=T0)))
    del stored["qualifying_since"]
    holding = decode_holding(json.dumps(stored))
    assert holding.held and holding.granted_at == T0 and holding.qualifying_since is None
