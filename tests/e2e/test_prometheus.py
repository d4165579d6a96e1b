"""A real Prometheus (Debian's server) scrapes the running system with Catalyst's rules: the key series exist
with sensible labels, and stopping the engagement worker while events keep arriving fires the lag alert."""

from __future__ import annotations

import json
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import grpc
import pytest
import yaml
from catalyst.feed.v1 import feed_pb2, feed_pb2_grpc

from services.common.grpc_client import bearer
from tests.conftest import RedisServer, free_port
from tests.integration.ops.promql import RULES_DIR
from tests.integration.ops.system import CatalystSystem, running_system
from tests.integration.ops.tools import tool

pytestmark = pytest.mark.e2e

# Alerts whose `for:` this test shortens so they fire within seconds; expressions and thresholds are unchanged.
FAST_ALERTS = {"CatalystConsumerLagGrowing": "5s", "CatalystTargetDown": "5s"}
AUTHORS = [f"emp-prom-{n}" for n in range(5)]


class Prometheus:
    """Debian's prometheus server on a free port with its own TSDB directory."""

    def __init__(self, workdir: Path, targets: dict[str, str]) -> None:
        self.port = free_port()
        rules = workdir / "rules"
        rules.mkdir()
        for path in RULES_DIR.glob("*.yml"):
            content = yaml.safe_load(path.read_text())
            for group in content["groups"]:
                for rule in group["rules"]:
                    if rule.get("alert") in FAST_ALERTS:
                        rule["for"] = FAST_ALERTS[rule["alert"]]
            (rules / path.name).write_text(yaml.safe_dump(content, sort_keys=False))
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s", "scrape_timeout": "1s"},
            "rule_files": [str(rules / "*.yml")],
            "scrape_configs": [
                {"job_name": job, "static_configs": [{"targets": [target]}]} for job, target in targets.items()
            ],
        }
        self.config = workdir / "prometheus.yml"
        self.config.write_text(yaml.safe_dump(config))
        self.log = workdir / "prometheus.log"
        args = [
            tool("prometheus"),
            f"--config.file={self.config}",
            f"--storage.tsdb.path={workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
        ]
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(args, stdout=log, stderr=log)
        self._wait_ready()

    def _wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/-/ready", timeout=2) as response:
                    if response.status == 200:
                        return
            except OSError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"prometheus did not start:\n{self.log.read_text()[-3000:]}")
            time.sleep(0.3)

    def api(self, path: str, **params: str) -> Any:
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/api/v1/{path}{query}", timeout=10) as response:
            body = json.loads(response.read())
        assert body["status"] == "success", body
        return body["data"]

    def query(self, promql: str) -> list[dict[str, Any]]:
        return self.api("query", query=promql)["result"]

    def wait_for(self, promql: str, timeout: float = 90) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while True:
            result = self.query(promql)
            if result:
                return result
            if time.monotonic() > deadline:
                raise AssertionError(f"no result for {promql}")
            time.sleep(1)

    def evaluated_since(self, alertname: str, since: float, timeout: float = 60) -> dict[str, Any]:
        """The alerting rule (health, state) once Prometheus evaluated it after `since` (epoch seconds), so its
        state rests on the data there by then and not on how long a test waited."""
        deadline = time.monotonic() + timeout
        while True:
            rules = [r for g in self.api("rules", type="alert")["groups"] for r in g["rules"] if r["name"] == alertname]
            assert len(rules) == 1, rules
            if datetime.fromisoformat(rules[0]["lastEvaluation"]).timestamp() > since:
                return rules[0]
            if time.monotonic() > deadline:
                raise AssertionError(f"{alertname} not evaluated since {since}: {rules[0]}")
            time.sleep(1)

    def firing(self, alertname: str) -> list[dict[str, Any]]:
        return [
            a for a in self.api("alerts")["alerts"] if a["labels"]["alertname"] == alertname and a["state"] == "firing"
        ]

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)


@pytest.fixture(scope="module")
def system(
    kafka_bootstrap: str, redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[CatalystSystem]:
    for system in running_system(kafka_bootstrap, redis_server.port, tmp_path_factory.mktemp("e2e-system")):
        system.register(*AUTHORS)
        yield system


@pytest.fixture(scope="module")
def prometheus(system: CatalystSystem, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prometheus]:
    server = Prometheus(tmp_path_factory.mktemp("prometheus"), system.metrics_targets)
    yield server
    server.stop()


def create_posts(system: CatalystSystem, count: int, tag: str) -> None:
    with grpc.insecure_channel(system.grpc_target("feed")) as channel:
        feed = feed_pb2_grpc.FeedServiceStub(channel)
        for n in range(count):
            author = AUTHORS[n % len(AUTHORS)]
            request = feed_pb2.CreatePostRequest(title=f"{tag} {n}", body="observed by Prometheus")
            feed.CreatePost(request, metadata=bearer(system.token(author)), timeout=10)


def labels(result: list[dict[str, Any]]) -> list[dict[str, str]]:
    return [r["metric"] for r in result]


def test_prometheus_scrapes_every_process_and_the_key_series_have_sensible_labels(
    system: CatalystSystem, prometheus: Prometheus
) -> None:
    up = prometheus.wait_for(f"count(up == 1) == {len(system.metrics_targets)}", timeout=60)
    assert up, prometheus.query("up")
    jobs = {m["job"]: m["instance"] for m in labels(prometheus.query("up"))}
    assert jobs == system.metrics_targets

    create_posts(system, 10, "warm-up")
    handled = prometheus.wait_for('grpc_server_handled_total{job="feed",grpc_method="CreatePost"}')
    assert labels(handled)[0] | {"instance": ""} == {
        "__name__": "grpc_server_handled_total",
        "job": "feed",
        "instance": "",
        "grpc_service": "catalyst.feed.v1.FeedService",
        "grpc_method": "CreatePost",
        "grpc_code": "OK",
    }
    assert prometheus.wait_for('grpc_server_handling_seconds_bucket{job="feed",grpc_method="CreatePost",le="+Inf"}')

    interactions = system.topics["interactions"]
    lag = prometheus.wait_for(f'kafka_consumergroup_lag{{consumergroup="{system.engagement_group}"}}')
    lag_seen = time.time()
    assert {m["topic"] for m in labels(lag)} == {interactions}
    assert sorted(int(m["partition"]) for m in labels(lag)) == list(range(6))

    applied = prometheus.wait_for('catalyst_engagement_events_total{job="engagement-worker",kind="PostCreated"} >= 10')
    assert applied
    assert prometheus.wait_for('feed_relay_published_total{job="feed-relay"} >= 10')
    assert prometheus.wait_for('feed_outbox_depth{job="feed-relay"}')
    assert prometheus.wait_for('recognition_records_consumed_total{job="recognition"}')
    assert prometheus.wait_for('kafka_lag_exporter_up{job="kafka-lag-exporter"} == 1')

    # Recording rules evaluate against the live series.
    appended = prometheus.wait_for(f'topic:kafka_topic_appended_records:rate5m{{topic="{interactions}"}} > 0')
    assert appended
    assert prometheus.wait_for(
        f'consumergroup_topic:kafka_consumergroup_lag:sum{{consumergroup="{system.engagement_group}"}}'
    )
    assert prometheus.wait_for('job_grpc_service:grpc_server_handling_seconds:p99_5m{job="feed"}')
    lag_rule = prometheus.evaluated_since("CatalystConsumerLagGrowing", lag_seen)
    assert (lag_rule["health"], lag_rule["state"]) == ("ok", "inactive"), lag_rule  # evaluated on the lag: quiet


def test_stopping_the_engagement_worker_while_events_arrive_fires_the_lag_alert(
    system: CatalystSystem, prometheus: Prometheus
) -> None:
    group = system.engagement_group
    prometheus.wait_for(f'sum(kafka_consumergroup_lag{{consumergroup="{group}"}}) == 0', timeout=90)

    system.processes["engagement-worker"].stop()
    deadline = time.monotonic() + 180
    fired: list[dict[str, Any]] = []
    batch = 0
    while not fired and time.monotonic() < deadline:
        create_posts(system, 20, f"batch {batch}")  # events keep arriving
        batch += 1
        fired = [a for a in prometheus.firing("CatalystConsumerLagGrowing") if a["labels"]["consumergroup"] == group]
    lag = prometheus.query(f'sum(kafka_consumergroup_lag{{consumergroup="{group}"}})')
    assert fired, f"lag alert did not fire; lag: {lag}\n{system.logs()}"
    alert = fired[0]
    assert alert["labels"]["topic"] == system.topics["interactions"]
    assert alert["labels"]["severity"] == "warning"
    assert float(alert["value"]) > 100
    assert alert["annotations"]["runbook_url"] == "docs/operations.md#consumer-lag-growing"

    down = prometheus.wait_for('ALERTS{alertname="CatalystTargetDown",alertstate="firing",job="engagement-worker"}')
    assert down
