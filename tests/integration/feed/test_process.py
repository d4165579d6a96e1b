"""`python -m services.feed` as a real process: health, reflection, /metrics, JSON logs, the
token-minting and directory-import commands, and a clean drain on SIGTERM."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import IO

import grpc
import pytest
from catalyst.feed.v1 import feed_pb2 as pb
from catalyst.feed.v1 import feed_pb2_grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from services.common.grpc_client import bearer
from tests.conftest import free_port, verify
from tests.integration.feed.harness import read_topic
from tests.waiting import until

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[3]


def env_for(common_env: dict[str, str], grpc_port: int, metrics_port: int) -> dict[str, str]:
    return {
        **os.environ,
        **common_env,
        "PYTHONPATH": f"{ROOT}:{ROOT / 'gen'}",
        "CATALYST_GRPC_HOST": "127.0.0.1",
        "CATALYST_METRICS_HOST": "127.0.0.1",
        "CATALYST_GRPC_PORT": str(grpc_port),
        "CATALYST_METRICS_PORT": str(metrics_port),
        "CATALYST_SHUTDOWN_GRACE_SECONDS": "2",
    }


def run_command(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", *args], env=env, cwd=ROOT, capture_output=True, text=True, timeout=60)


def wait_serving(target: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    with grpc.insecure_channel(target) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while True:
            try:
                if stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=2).status == 1:
                    return
            except grpc.RpcError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError("feed did not become healthy")
            time.sleep(0.2)


def test_feed_process_serves_probes_metrics_commands_and_drains_on_sigterm(
    common_env: dict[str, str], kafka_bootstrap: str, topics: dict[str, str], tmp_path: Path
) -> None:
    grpc_port, metrics_port = free_port(), free_port()
    env = env_for(common_env, grpc_port, metrics_port)
    target = f"127.0.0.1:{grpc_port}"
    log_file = (tmp_path / "feed.log").open("w+")
    process = subprocess.Popen([sys.executable, "-m", "services.feed"], env=env, cwd=ROOT, stderr=log_file)
    try:
        wait_serving(target)

        directory = tmp_path / "people.csv"
        directory.write_text("employee_id,display_name,department_id,is_manager\ne-1,One,d1,false\ne-2,Two,d2,yes\n")
        imported = run_command(env, "services.feed.import_directory", str(directory), "--target", target)
        assert imported.returncode == 0, imported.stderr
        assert "2 employees read, 2 created or changed" in imported.stdout

        minted = run_command(env, "services.common.mint_token", "--subject", "e-1", "--role", "employee")
        assert minted.returncode == 0, minted.stderr
        token = minted.stdout.strip()
        assert verify(token).subject == "e-1"

        with grpc.insecure_channel(target) as channel:
            health = health_pb2_grpc.HealthStub(channel)
            status = health.Check(health_pb2.HealthCheckRequest(service="catalyst.feed.v1.FeedService"), timeout=5)
            assert status.status == health_pb2.HealthCheckResponse.SERVING
            reflection = reflection_pb2_grpc.ServerReflectionStub(channel)
            answers = reflection.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]))
            names = {s.name for a in answers for s in a.list_services_response.service}
            assert "catalyst.feed.v1.FeedService" in names
            feed = feed_pb2_grpc.FeedServiceStub(channel)
            for n in range(5):
                feed.RecordFeatureTrial(
                    pb.RecordFeatureTrialRequest(feature_id=f"f-{n}"), metadata=bearer(token), timeout=10
                )
            with pytest.raises(grpc.RpcError) as denied:
                feed.ListFeed(pb.ListFeedRequest(), timeout=10)
            assert denied.value.code() == grpc.StatusCode.UNAUTHENTICATED

        metrics = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10).read().decode()
        for name in (
            'grpc_server_handled_total{grpc_code="OK",grpc_method="RecordFeatureTrial"',
            'grpc_server_handled_total{grpc_code="UNAUTHENTICATED",grpc_method="ListFeed"',
            "grpc_server_handling_seconds_bucket",
            "feed_outbox_depth",
            "feed_outbox_oldest_age_seconds",
            "feed_relay_published_total",
            "feed_relay_failures_total",
        ):
            assert name in metrics.replace('grpc_service="catalyst.feed.v1.FeedService",', ""), name

        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()

    assert_drained_on_sigterm(log_file, "feed")

    records = asyncio.run(read_topic(kafka_bootstrap, topics["interactions"], expected=7))
    assert (
        sorted(r.envelope.type.rsplit(".", 1)[1] for r in records) == ["EmployeeRegistered"] * 2 + ["FeatureTried"] * 5
    )
    managers = {
        r.key: r.envelope.employee_registered.is_manager for r in records if r.envelope.type.endswith("Registered")
    }
    assert managers == {"e-1": False, "e-2": True}


def test_relay_process_publishes_what_the_grpc_process_acknowledges_and_drains_on_sigterm(
    common_env: dict[str, str], kafka_bootstrap: str, topics: dict[str, str], tmp_path: Path
) -> None:
    """The deployed form: the gRPC feed with CATALYST_RELAY_ENABLED=false and `python -m services.feed.relay`.
    Writes acknowledged while the relay is stopped are published, in order, before it exits on SIGTERM."""
    grpc_port, metrics_port, relay_metrics_port = free_port(), free_port(), free_port()
    env = {
        **env_for(common_env, grpc_port, metrics_port),
        "CATALYST_RELAY_ENABLED": "false",
        "CATALYST_RELAY_METRICS_PORT": str(relay_metrics_port),
    }
    target = f"127.0.0.1:{grpc_port}"
    feed_log, relay_log = (tmp_path / "feed.log").open("w+"), (tmp_path / "relay.log").open("w+")
    feed = subprocess.Popen([sys.executable, "-m", "services.feed"], env=env, cwd=ROOT, stderr=feed_log)
    relay = subprocess.Popen([sys.executable, "-m", "services.feed.relay"], env=env, cwd=ROOT, stderr=relay_log)
    try:
        wait_serving(target)
        hr, employee = (bearer(mint(env, "hr-1", "hr")), bearer(mint(env, "e-1", "employee")))
        with grpc.insecure_channel(target) as channel:
            stub = feed_pb2_grpc.FeedServiceStub(channel)
            row = pb.Employee(employee_id="e-1", display_name="One", department_id="d1")
            stub.UpsertEmployees(pb.UpsertEmployeesRequest(employees=[row]), metadata=hr, timeout=10)
            relay_metrics = f"http://127.0.0.1:{relay_metrics_port}/metrics"
            until(lambda: fetch(relay_metrics), lambda text: "feed_relay_published_total 1.0" in text, 30)
            feed_metrics = fetch(f"http://127.0.0.1:{metrics_port}/metrics")
            assert "feed_relay_leader" not in feed_metrics, "the gRPC process runs no relay"

            relay.send_signal(signal.SIGSTOP)
            try:
                for n in range(20):
                    stub.RecordFeatureTrial(
                        pb.RecordFeatureTrialRequest(feature_id=f"f-{n:02d}"), metadata=employee, timeout=10
                    )
            finally:
                relay.send_signal(signal.SIGCONT)
        relay.send_signal(signal.SIGTERM)
        assert relay.wait(timeout=60) == 0
        feed.send_signal(signal.SIGTERM)
        assert feed.wait(timeout=60) == 0
    finally:
        for process in (relay, feed):
            if process.poll() is None:
                process.kill()
                process.wait()

    assert_drained_on_sigterm(relay_log, "feed-relay")

    records = asyncio.run(read_topic(kafka_bootstrap, topics["interactions"], expected=21))
    trials = [r.envelope.feature_tried.feature_id for r in records if r.envelope.HasField("feature_tried")]
    assert len(records) == 21 and trials == [f"f-{n:02d}" for n in range(20)]


def assert_drained_on_sigterm(log_file: IO[str], service: str) -> None:
    """The process logged JSON lines only as `service`, and its SIGTERM path: asked, relay drained, stopped."""
    log_file.seek(0)
    lines = [json.loads(line) for line in log_file if line.startswith("{")]
    assert lines and all(line["service"] == service for line in lines)
    messages = [line["message"] for line in lines]
    assert "shutdown requested" in messages and "relay drained" in messages and "stopped" in messages


def mint(env: dict[str, str], subject: str, role: str) -> str:
    minted = run_command(env, "services.common.mint_token", "--subject", subject, "--role", role)
    assert minted.returncode == 0, minted.stderr
    return minted.stdout.strip()


def fetch(url: str) -> str:
    try:
        return urllib.request.urlopen(url, timeout=5).read().decode()
    except OSError:
        return ""
