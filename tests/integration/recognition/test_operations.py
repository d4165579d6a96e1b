"""Forgetting, dead letters, the badge event stream, Redis outages, and the process itself."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import pytest
from catalyst.events.v1 import envelope_pb2
from catalyst.recognition.v1 import recognition_pb2 as pb
from catalyst.recognition.v1 import recognition_pb2_grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from services.common.auth import Role
from tests.conftest import ROOT, RedisServer, free_port, trusted_issuer
from tests.integration.recognition.harness import Harness, eventually, read_topic, registered, score_changed

pytestmark = pytest.mark.integration

T0 = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)
BRONZE = {"posts_30d": 3}


async def test_a_tombstone_forgets_the_employee_everywhere(rec: Harness) -> None:
    await rec.register("kim", "d1", "Kim", T0)
    await rec.scores_applied(score_changed("kim", 1, T0, {**BRONZE, "pilot_activities": 2}))
    await rec.events_of("badge_granted", 2)
    assert await rec.store.holders("creator") == ["kim"]

    await rec.produce("engagement", "kim", None)
    await eventually(lambda: rec.redis_keys("kim"), lambda keys: keys == [])
    assert await rec.store.holders("creator") == [] and await rec.store.pilot_candidates() == []
    assert await rec.store.departments() == {}
    await eventually(rec.recognition_events, lambda events: events[-1:] == [None])  # tombstone for consumers

    await rec.scores_applied(score_changed("lou", 1, T0, BRONZE))
    forgotten = registered("lou", "d1", "Lou", T0)
    forgotten.ClearField("employee_registered")
    forgotten.employee_forgotten.SetInParent()
    forgotten.type = "catalyst.events.v1.EmployeeForgotten"
    await rec.produce("interactions", "lou", forgotten.SerializeToString())
    await eventually(lambda: rec.redis_keys("lou"), lambda keys: keys == [])


async def test_poison_goes_to_the_dead_letter_topic_and_the_stream_moves_on(rec: Harness) -> None:
    await rec.produce("engagement", "mia", b"\xff\xff not protobuf")
    wrong = registered("mia", "d1", "Mia", T0)  # a directory event has no place on the engagement topic
    await rec.produce("engagement", "mia", wrong.SerializeToString())
    await rec.produce("interactions", "mia", b"\xff\xff")  # the engagement worker dead-letters these, not us
    await rec.scores_applied(score_changed("mia", 1, T0, BRONZE))

    letters = await asyncio.to_thread(read_topic, rec.bootstrap, rec.topics["deadletter"])
    parsed = [envelope_pb2.DeadLetter.FromString(value) for _, value in letters]
    assert len(parsed) == 2
    assert "not a catalyst.events.v1.Envelope" in parsed[0].reason
    assert "expected ScoreChanged" in parsed[1].reason and parsed[1].consumer == "recognition"
    assert parsed[1].source_topic == rec.topics["engagement"] and parsed[1].value == wrong.SerializeToString()
    await rec.events_of("badge_granted", 1)


async def test_clients_stream_badge_events_they_may_see(rec: Harness) -> None:
    await rec.scores_applied(score_changed("ned", 1, T0, {}, department="d1"))
    await rec.stub.SetPreferences(
        pb.SetPreferencesRequest(preferences=pb.Preferences(hidden_from_lists=True)), metadata=rec.token("ned")
    )
    colleague = rec.stub.StreamBadgeEvents(pb.StreamBadgeEventsRequest(department_id="d1"), metadata=rec.token("x"))
    own = rec.stub.StreamBadgeEvents(pb.StreamBadgeEventsRequest(), metadata=rec.token("ned"))
    await eventually(lambda: rec.metric("recognition_stream_clients"), lambda n: n == 2)

    await rec.stub.SetBadgeShown(pb.SetBadgeShownRequest(badge="creator", shown=True), metadata=rec.token("pia"))
    await rec.scores_applied(score_changed("ned", 2, T0 + timedelta(days=1), BRONZE, department="d1"))
    await rec.scores_applied(score_changed("ola", 1, T0 + timedelta(days=1), BRONZE, department="d2"))
    await rec.scores_applied(score_changed("rex", 1, T0 + timedelta(days=1), BRONZE, department="d1"))
    await rec.scores_applied(score_changed("pia", 1, T0 + timedelta(days=1), BRONZE, department="d1"))

    seen_by_colleague = await asyncio.wait_for(colleague.read(), 30)
    # ned is hidden, ola is in another department, rex keeps his badge private; pia chose to show hers
    assert seen_by_colleague.event.employee_id == "pia"
    seen_by_ned = await asyncio.wait_for(own.read(), 30)
    assert seen_by_ned.event.employee_id == "ned" and seen_by_ned.event.badge_granted.badge == "creator"
    colleague.cancel()
    own.cancel()


async def test_redis_outage_delays_but_loses_nothing(rec: Harness, redis_server: RedisServer) -> None:
    await rec.scores_applied(score_changed("quin", 1, T0, {}))
    await rec.settled()  # nothing of the first update is in flight when Redis goes
    redis_server.stop()
    try:
        await rec.scores(score_changed("quin", 2, T0 + timedelta(days=1), BRONZE))
        # the consumer hit the outage reading the batch's records and holds the batch (uncommitted) to retry
        await eventually(lambda: rec.metric("recognition_retries_total", step="preload"), lambda n: n >= 1)
        assert await rec.lag() >= 1
    finally:
        await asyncio.to_thread(redis_server.start)
    await eventually(lambda: rec.store.load("quin"), lambda r: r.version == 2)
    (granted,) = await rec.events_of("badge_granted", 1)
    assert granted.employee_id == "quin"


async def test_health_reflection_and_metrics(rec: Harness) -> None:
    health = health_pb2_grpc.HealthStub(rec.channel)
    reply = await health.Check(health_pb2.HealthCheckRequest(service="catalyst.recognition.v1.RecognitionService"))
    assert reply.status == health_pb2.HealthCheckResponse.SERVING
    reflection = reflection_pb2_grpc.ServerReflectionStub(rec.channel)
    responses = reflection.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]))
    async for response in responses:
        names = {s.name for s in response.list_services_response.service}
        assert "catalyst.recognition.v1.RecognitionService" in names
        break
    await rec.scores_applied(score_changed("rae", 1, T0, BRONZE))
    await rec.events_of("badge_granted", 1)
    assert await rec.metric("recognition_evaluation_seconds_count") >= 1
    owner = rec.token("comms", Role.PROGRAMME_OWNER)
    await rec.stub.GetDepartmentCoverage(pb.GetDepartmentCoverageRequest(), metadata=owner)


def test_the_process_serves_and_shuts_down_gracefully_on_sigterm(common_env: dict[str, str], tmp_path: Path) -> None:
    port, metrics_port = free_port(), free_port()
    env = {
        **os.environ,
        **common_env,
        "PYTHONPATH": f"{ROOT}:{ROOT / 'gen'}",
        "CATALYST_GRPC_PORT": str(port),
        "CATALYST_METRICS_PORT": str(metrics_port),
        "CATALYST_GRPC_HOST": "127.0.0.1",
        "CATALYST_METRICS_HOST": "127.0.0.1",
        "CATALYST_RECOGNITION_GROUP_ID": f"recognition-proc-{port}",
    }
    log = (tmp_path / "recognition.log").open("w")
    proc = subprocess.Popen([sys.executable, "-m", "services.recognition"], cwd=ROOT, env=env, stderr=log)
    try:
        channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        health = health_pb2_grpc.HealthStub(channel)
        deadline = time.monotonic() + 60
        while True:
            try:
                if health.Check(health_pb2.HealthCheckRequest(), timeout=2).status == 1:
                    break
            except grpc.RpcError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, (tmp_path / "recognition.log").read_text()
            time.sleep(0.2)
        stub = recognition_pb2_grpc.RecognitionServiceStub(channel)
        token = trusted_issuer().mint("sam", [Role.EMPLOYEE])
        prefs = stub.GetPreferences(pb.GetPreferencesRequest(), metadata=(("authorization", f"Bearer {token}"),))
        assert not prefs.preferences.recognition_opt_out
        metrics = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).read().decode()
        assert "recognition_badge_holders" in metrics and "grpc_server_handled_total" in metrics
        channel.close()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert '"stopped"' in (tmp_path / "recognition.log").read_text()


def test_an_invalid_rules_file_stops_start_up_with_a_clear_message(tmp_path: Path) -> None:
    rules = tmp_path / "badges.yaml"
    rules.write_text("version: 1\nbadges:\n  creator:\n    name: Creator\n")
    env = {**os.environ, "PYTHONPATH": f"{ROOT}:{ROOT / 'gen'}", "CATALYST_BADGE_RULES_FILE": str(rules)}
    done = subprocess.run(
        [sys.executable, "-m", "services.recognition"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode != 0
    assert f"invalid badge rules {rules}" in done.stderr and "badges.creator.description" in done.stderr


async def test_a_background_loop_that_dies_turns_health_not_serving(rec: Harness) -> None:
    async def broken_commit() -> None:
        raise RuntimeError("simulated bug")

    rec.app.consumer._commit = broken_commit  # type: ignore[method-assign]
    await rec.scores(score_changed("tess", 1, T0, {}))
    health = health_pb2_grpc.HealthStub(rec.channel)
    await eventually(
        lambda: health.Check(health_pb2.HealthCheckRequest(service="")),
        lambda reply: reply.status == health_pb2.HealthCheckResponse.NOT_SERVING,
    )
