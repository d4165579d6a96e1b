"""Clients Catalyst did not write, against the running system: grpcurl (reflection, one RPC per service),
a Node.js client (@grpc/grpc-js loading proto/), and kcat piping a badge event into `protoc --decode`."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import RedisServer
from tests.integration.ops.system import ROOT, CatalystSystem, running_system
from tests.integration.ops.tools import node_client, tool

pytestmark = pytest.mark.integration

SERVICES = {
    "feed": "catalyst.feed.v1.FeedService",
    "engagement": "catalyst.engagement.v1.EngagementService",
    "recognition": "catalyst.recognition.v1.RecognitionService",
}


@pytest.fixture(scope="module")
def system(
    kafka_bootstrap: str, redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[CatalystSystem]:
    for system in running_system(kafka_bootstrap, redis_server.port, tmp_path_factory.mktemp("ops-clients")):
        system.register("emp-grpcurl", "emp-node", "emp-kcat")
        yield system


def run(args: list[str], stdin: bytes | None = None, timeout: float = 60) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(args, input=stdin, capture_output=True, timeout=timeout, cwd=ROOT)


def grpcurl(
    target: str, *args: str, token: str | None = None, data: dict | None = None
) -> subprocess.CompletedProcess[bytes]:
    command = [tool("grpcurl"), "-plaintext", "-max-time", "20"]
    if token is not None:
        command += ["-H", f"authorization: Bearer {token}"]
    if data is not None:
        command += ["-d", json.dumps(data)]
    return run([*command, target, *args])


def test_grpcurl_lists_every_service_through_reflection(system: CatalystSystem) -> None:
    for service, full_name in SERVICES.items():
        listed = grpcurl(system.grpc_target(service), "list")
        assert listed.returncode == 0, listed.stderr.decode()
        names = set(listed.stdout.decode().split())
        assert {full_name, "grpc.health.v1.Health"} <= names, names
        described = grpcurl(system.grpc_target(service), "describe", full_name)
        assert described.returncode == 0 and b"rpc " in described.stdout, described.stderr.decode()


def test_grpcurl_calls_an_rpc_of_each_service_with_a_token(system: CatalystSystem) -> None:
    token = system.token("emp-grpcurl")
    created = grpcurl(
        system.grpc_target("feed"),
        "catalyst.feed.v1.FeedService/CreatePost",
        token=token,
        data={"title": "Hello", "body": "From grpcurl"},
    )
    assert created.returncode == 0, created.stderr.decode()
    post = json.loads(created.stdout)["post"]
    assert post["author_id"] == "emp-grpcurl" and post["title"] == "Hello"  # grpcurl prints proto field names

    def get_score() -> subprocess.CompletedProcess[bytes]:
        return grpcurl(
            system.grpc_target("engagement"), "catalyst.engagement.v1.EngagementService/GetScore", token=token, data={}
        )

    score = get_score()
    deadline = time.monotonic() + 90
    while b"Code: NotFound" in score.stderr and time.monotonic() < deadline:  # until the worker scored the post
        time.sleep(1)
        score = get_score()
    assert score.returncode == 0, score.stderr.decode()
    assert json.loads(score.stdout)["employee_id"] == "emp-grpcurl"

    badges = grpcurl(
        system.grpc_target("recognition"), "catalyst.recognition.v1.RecognitionService/GetBadges", token=token, data={}
    )
    assert badges.returncode == 0, badges.stderr.decode()
    assert isinstance(json.loads(badges.stdout), dict)

    health = grpcurl(system.grpc_target("feed"), "grpc.health.v1.Health/Check", data={"service": SERVICES["feed"]})
    assert json.loads(health.stdout) == {"status": "SERVING"}

    anonymous = grpcurl(system.grpc_target("feed"), "catalyst.feed.v1.FeedService/CreatePost", data={"title": "x"})
    assert anonymous.returncode != 0
    assert b"Code: Unauthenticated" in anonymous.stderr


def node(*args: str) -> subprocess.CompletedProcess[bytes]:
    return run([tool("node"), str(node_client() / "feed-client.mjs"), *args])


def test_node_client_creates_a_post_with_a_token(system: CatalystSystem) -> None:
    created = node(system.grpc_target("feed"), system.token("emp-node"), "Hello from Node", "grpc-js + proto-loader")
    assert created.returncode == 0, created.stdout.decode() + created.stderr.decode()
    post = json.loads(created.stdout)["post"]
    assert post["author_id"] == "emp-node"
    assert post["title"] == "Hello from Node" and post["body"] == "grpc-js + proto-loader"
    assert post["post_id"]

    forged = node(system.grpc_target("feed"), system.token("emp-node") + "x", "Forged", "")
    assert forged.returncode == 1
    assert json.loads(forged.stdout)["code"] == 16  # UNAUTHENTICATED


def first_record(system: CatalystSystem, topic: str, timeout: float = 120) -> bytes:
    """The first record's value on the topic, read by kcat (retried until one exists)."""
    deadline = time.monotonic() + timeout
    command = [tool("kcat"), "-b", system.bootstrap, "-C", "-t", topic, "-o", "beginning", "-e", "-q", "-c", "1"]
    while True:
        result = run([*command, "-f", "%s"], timeout=60)
        assert result.returncode == 0, result.stderr.decode()
        if result.stdout:
            return result.stdout
        if time.monotonic() > deadline:
            raise AssertionError(f"no record on {topic}; logs:\n{system.logs()}")
        time.sleep(1)


def test_kcat_consumes_a_badge_event_and_protoc_decodes_it(system: CatalystSystem, tmp_path: Path) -> None:
    token = system.token("emp-kcat")
    for n in range(3):  # Creator bronze: three posts in 30 days
        made = grpcurl(
            system.grpc_target("feed"),
            "catalyst.feed.v1.FeedService/CreatePost",
            token=token,
            data={"title": f"Post {n}", "body": "badge material"},
        )
        assert made.returncode == 0, made.stderr.decode()

    raw = first_record(system, system.topics["recognition"])
    decoded = run(
        [
            tool("protoc"),
            "--decode",
            "catalyst.events.v1.Envelope",
            "-Iproto",
            "proto/catalyst/events/v1/envelope.proto",
        ],
        stdin=raw,
    )
    assert decoded.returncode == 0, decoded.stderr.decode()
    text = decoded.stdout.decode()
    assert 'type: "catalyst.events.v1.BadgeGranted"' in text, text
    assert 'employee_id: "emp-kcat"' in text
    assert "badge_granted {" in text and 'badge: "creator"' in text, text

    keyed = run(
        [
            tool("kcat"),
            "-b",
            system.bootstrap,
            "-C",
            "-t",
            system.topics["recognition"],
            "-o",
            "beginning",
            "-e",
            "-q",
            "-c",
            "1",
            "-f",
            "%k",
        ]
    )
    assert keyed.stdout == b"emp-kcat"
