"""Erasure leaves a keyed gone marker that refuses late and replayed events; retention expires lost badges."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import pytest
import yaml
from catalyst.recognition.v1 import recognition_pb2 as pb
from google.protobuf.message import Message

from services.common.policy import DEFAULT_POLICY_FILE
from services.common.settings import CommonSettings
from services.recognition.store import gone_key
from tests.integration.recognition.harness import (
    Harness,
    eventually,
    registered,
    score_changed,
    settings_for,
    start_harness,
    stop_harness,
)

T0 = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)
BRONZE = {"posts_30d": 3}
BELOW = {"posts_30d": 1}


def forgotten(employee: str, at: datetime) -> bytes:
    env = registered(employee, "d1", "", at)
    env.ClearField("employee_registered")
    env.employee_forgotten.SetInParent()
    env.type = "catalyst.events.v1.EmployeeForgotten"
    env.event_id = f"forget-{employee}-{at.isoformat()}"
    return env.SerializeToString()


def holds_nothing(message: Message) -> bool:
    """True when a message carries nothing but employee ids (and sub-messages that carry nothing)."""
    for field, value in message.ListFields():
        if field.name == "employee_id":
            continue
        if field.message_type is not None and not field.is_repeated and holds_nothing(value):
            continue
        return False
    return True


async def all_keys(h: Harness) -> list[str]:
    return sorted([k.decode() async for k in h.store.redis.scan_iter(match="*")])


async def test_an_erased_person_is_not_recreated_by_late_or_replayed_events(rec: Harness) -> None:
    await rec.register("zoe", "d1", "Zoe", T0)
    await rec.scores_applied(score_changed("zoe", 1, T0, BRONZE))
    await rec.stub.SetPreferences(
        pb.SetPreferencesRequest(preferences=pb.Preferences(hidden_from_lists=True)), metadata=rec.token("zoe")
    )
    mine = await rec.stub.GetMyData(pb.GetMyDataRequest(), metadata=rec.token("zoe"))
    assert (mine.display_name, mine.department_id, mine.figures["posts_30d"]) == ("Zoe", "d1", 3)
    assert mine.preferences.hidden_from_lists and [b.badge for b in mine.badges] == ["creator"]
    assert mine.badges[0].evidence[0].value == 3

    erased_at = T0 + timedelta(days=3)
    await rec.produce("interactions", "zoe", forgotten("zoe", erased_at))
    await eventually(lambda: rec.redis_keys("zoe"), lambda keys: keys == [])
    await rec.settled()
    marker = gone_key(CommonSettings().pseudonym_key, "zoe")
    assert [k for k in await all_keys(rec) if "zoe" in k] == []  # nothing names her, the marker neither
    assert await rec.store.redis.get(marker) == str(int(erased_at.timestamp() * 1000)).encode()
    assert 0 < await rec.store.redis.pttl(marker) <= 400 * 86_400_000

    # lag or a replay: a newer score, an older registration, and a call with a token still valid
    await rec.scores(score_changed("zoe", 2, T0 + timedelta(days=1), BRONZE))
    await rec.register("zoe", "d1", "Zoe", T0)
    await rec.settled()
    assert await rec.metric("recognition_records_consumed_total", topic="engagement", outcome="erased") == 1
    assert await rec.metric("recognition_records_consumed_total", topic="interactions", outcome="erased") == 1
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await rec.stub.SetPreferences(pb.SetPreferencesRequest(preferences=pb.Preferences()), metadata=rec.token("zoe"))
    assert refused.value.code() == grpc.StatusCode.NOT_FOUND and "erased" in (refused.value.details() or "")
    assert await rec.redis_keys("zoe") == []
    empty = await rec.stub.GetMyData(pb.GetMyDataRequest(), metadata=rec.token("zoe"))
    assert empty.employee_id == "zoe" and holds_nothing(empty), empty
    assert await rec.events_of("badge_granted", 1, employee="zoe")  # granted before; no second grant

    # a registration after the erasure is a re-hire: the person starts afresh
    await rec.register("zoe", "d2", "Zoe", erased_at + timedelta(days=30))
    await eventually(lambda: rec.store.load("zoe"), lambda r: r.registered and r.department == "d2")
    assert not await rec.store.redis.exists(marker)


def policy_with(tmp_path: Path, **retention: object) -> Path:
    raw = yaml.safe_load(DEFAULT_POLICY_FILE.read_text())
    raw["retention"].update(retention)
    file = tmp_path / "policy.yaml"
    file.write_text(yaml.safe_dump(raw))
    return file


async def test_retention_expires_the_history_of_badges_lost_long_ago(
    common_env: dict[str, str], tmp_path: Path
) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    harness = await start_harness(common_env)
    try:
        # Lost 16 days ago (past a 3-day limit), and lost a day ago (within it).
        await harness.scores_applied(score_changed("old", 1, now - timedelta(days=40), BRONZE))
        await harness.scores_applied(score_changed("old", 2, now - timedelta(days=30), BELOW))
        await harness.scores_applied(score_changed("old", 3, now - timedelta(days=10), BELOW))
        await harness.scores_applied(score_changed("new", 1, now - timedelta(days=20), BRONZE))
        await harness.scores_applied(score_changed("new", 2, now - timedelta(days=15), BELOW))
        await harness.scores_applied(score_changed("new", 3, now, BELOW))
        await harness.events_of("badge_revoked", 2)
    finally:
        await stop_harness(harness)

    recognition_section = {"revoked_badges": "3d"}
    policy = policy_with(tmp_path, recognition=recognition_section, sweep_interval="1s")
    swept = await start_harness(common_env, settings_for(common_env, policy_file=policy))
    try:
        await eventually(
            lambda: swept.metric("recognition_retention_removed_total", kind="revoked_badges"), lambda n: n == 1
        )
        old = await swept.stub.GetBadges(pb.GetBadgesRequest(), metadata=swept.token("old"))
        new = await swept.stub.GetBadges(pb.GetBadgesRequest(), metadata=swept.token("new"))
        assert not old.revoked and [b.badge for b in new.revoked] == ["creator"]
        assert new.revoked[0].evidence and new.revoked[0].revoke_reason
        record = await swept.store.load("old")
        (holding,) = record.holdings.values()
        assert (holding.grant_seq, holding.revoked_at, holding.revoke_reason) == (1, None, "")
        assert not holding.evidence and not holding.revoke_evidence

        # the stub keeps the grant count: a new grant gets a new event id and is published
        await swept.scores_applied(score_changed("old", 4, now, BRONZE))
        await swept.events_of("badge_granted", 3)
    finally:
        await stop_harness(swept)
