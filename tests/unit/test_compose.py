"""docker-compose.yml must agree with the code: ports, environment variable names, topics."""

from __future__ import annotations

from pathlib import Path

import yaml

from services.common.settings import CommonSettings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]
CATALYST = ["feed", "feed-relay", "engagement-worker", "engagement-publisher", "engagement-api", "recognition"]


def env_names(service: str) -> set[str]:
    return set(SERVICES[service].get("environment", {}))


def test_environment_names_are_fields_of_each_service_settings() -> None:
    from services.console.config import ConsoleSettings
    from services.engagement.api.settings import EngagementApiSettings
    from services.engagement.publisher.settings import PublisherSettings
    from services.engagement.worker.settings import EngagementWorkerSettings
    from services.feed.config import FeedSettings
    from services.issuer.config import IssuerSettings
    from services.recognition.config import RecognitionSettings

    settings = {
        "feed": FeedSettings, "feed-relay": FeedSettings, "engagement-worker": EngagementWorkerSettings,
        "engagement-publisher": PublisherSettings, "engagement-api": EngagementApiSettings,
        "recognition": RecognitionSettings, "topics": CommonSettings, "issuer": IssuerSettings,
        "console": ConsoleSettings,
    }  # fmt: skip
    for service, cls in settings.items():
        fields = {f"CATALYST_{name.upper()}" for name in cls.model_fields}
        unknown = env_names(service) - fields
        assert not unknown, f"{service} sets variables no settings class reads: {unknown}"


def test_services_reach_kafka_on_its_internal_listener() -> None:
    kafka_env = SERVICES["kafka"]["environment"]
    internal = next(a for a in kafka_env["KAFKA_ADVERTISED_LISTENERS"].split(",") if a.startswith("INTERNAL://"))
    for service in [*CATALYST, "topics"]:
        assert "INTERNAL://" + SERVICES[service]["environment"]["CATALYST_KAFKA_BOOTSTRAP"] == internal


def test_kafka_does_not_auto_create_topics_and_topics_are_created_from_the_declaration() -> None:
    assert SERVICES["kafka"]["environment"]["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
    assert SERVICES["topics"]["command"] == ["python", "deploy/topics.py", "create"]


def test_published_ports_follow_the_design_defaults() -> None:
    published = {s: {p.split(":")[0] for p in SERVICES[s].get("ports", [])} for s in SERVICES}
    assert published["kafka"] == {"9092"}
    assert published["redis"] == {"6379"}
    assert published["feed"] == {"50051", "9101"}
    assert published["feed-relay"] == {"9108"}
    assert published["engagement-api"] == {"50052", "9102"}
    assert published["engagement-worker"] == {"9103"}
    assert published["engagement-publisher"] == {"9106"}
    assert published["recognition"] == {"50053", "9104"}
    assert published["kafka-lag-exporter"] == {"9105"}
    assert published["issuer"] == {"9107"}
    assert published["console"] == {"8080"}
    assert published["prometheus"] == {"9090"}
    assert published["grafana"] == {"3000"}


def test_prometheus_scrapes_every_service_on_its_metrics_port() -> None:
    config = yaml.safe_load((ROOT / "deploy/prometheus/prometheus.yml").read_text())
    targets = {t for job in config["scrape_configs"] for sc in job["static_configs"] for t in sc["targets"]}
    assert targets == {
        "feed:9101", "feed-relay:9108", "engagement-api:9102", "engagement-worker:9103", "engagement-publisher:9106",
        "recognition:9104", "kafka-lag-exporter:9105",
    }  # fmt: skip


def test_local_runner_and_compose_start_the_same_commands() -> None:
    """Same commands, and the environment the local runner sets (leading NAME=value words) compose sets too."""
    local, local_env = {}, {}
    for line in (ROOT / "deploy/local/services.conf").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _port, *words = line.split()
            assignments = [w for w in words if "=" in w and w.split("=", 1)[0].isupper()]
            local[name] = ["python", *words[len(assignments) :]]
            local_env[name] = dict(w.split("=", 1) for w in assignments)
    assert local == {s: SERVICES[s]["command"] for s in ["issuer", *CATALYST, "console", "kafka-lag-exporter"]}
    for name, env in local_env.items():
        assert env.items() <= SERVICES[name].get("environment", {}).items(), name
    assert local_env["feed"] == {"CATALYST_RELAY_ENABLED": "false"}, "the relay runs in feed-relay"


def test_published_ports_are_the_services_default_settings() -> None:
    from services.console.config import ConsoleSettings
    from services.engagement.api.settings import EngagementApiSettings
    from services.engagement.publisher.settings import PublisherSettings
    from services.engagement.worker.settings import EngagementWorkerSettings
    from services.feed.config import FeedSettings
    from services.issuer.config import IssuerSettings
    from services.recognition.config import RecognitionSettings

    expected = {
        "feed": {FeedSettings().grpc_port, FeedSettings().metrics_port},
        "feed-relay": {FeedSettings().relay_metrics_port},
        "engagement-api": {EngagementApiSettings().grpc_port, EngagementApiSettings().metrics_port},
        "engagement-worker": {EngagementWorkerSettings().worker_metrics_port},
        "engagement-publisher": {PublisherSettings().publisher_metrics_port},
        "recognition": {RecognitionSettings().grpc_port, RecognitionSettings().metrics_port},
        "issuer": {IssuerSettings().issuer_port},
        "console": {ConsoleSettings().console_port},
    }
    for service, ports in expected.items():
        assert {int(p.split(":")[1]) for p in SERVICES[service]["ports"]} == ports, service
