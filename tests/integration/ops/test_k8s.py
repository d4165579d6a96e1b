"""deploy/k8s/ is valid Kubernetes (kubeconform, strict, offline schemas) and agrees with the code."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import yaml

from deploy.k8s.rules_configmap import TARGET as RULES_CONFIGMAP
from deploy.k8s.rules_configmap import render
from deploy.prometheus.kafka_lag_exporter import LagExporterSettings
from services.common.settings import CommonSettings
from services.common.topics import load_topics
from services.console.config import ConsoleSettings
from services.engagement.api.settings import EngagementApiSettings
from services.engagement.publisher.settings import PublisherSettings
from services.engagement.worker.settings import EngagementWorkerSettings
from services.feed.config import FeedSettings
from services.recognition.config import RecognitionSettings
from tests.integration.ops.tools import ROOT, k8s_schema_location, tool

K8S = ROOT / "deploy" / "k8s"
MANIFESTS = sorted(p for p in K8S.glob("*.yaml") if p.name != "kustomization.yaml")
SETTINGS = {
    "feed": FeedSettings,
    "feed-relay": FeedSettings,
    "engagement-api": EngagementApiSettings,
    "engagement-worker": EngagementWorkerSettings,
    "engagement-publisher": PublisherSettings,
    "recognition": RecognitionSettings,
    "topics": CommonSettings,
    "kafka-lag-exporter": LagExporterSettings,
    "console": ConsoleSettings,
}
# The console's cookie signing key, from a Secret the operator creates; it signs no token.
OPERATOR_SECRETS = {"CATALYST_CONSOLE_SESSION_SECRET"}
GRPC_SERVICES = {
    "feed": ("catalyst.feed.v1.FeedService", 50051, 9101),
    "engagement-api": ("catalyst.engagement.v1.EngagementService", 50052, 9102),
    "recognition": ("catalyst.recognition.v1.RecognitionService", 50053, 9104),
}


def kubeconform(*paths: Path | str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    args = [tool("kubeconform"), "-strict", "-summary", "-schema-location", k8s_schema_location(), *map(str, paths)]
    return subprocess.run(args, input=stdin, capture_output=True, text=True, timeout=120)


def resources() -> list[dict[str, Any]]:
    return [doc for path in MANIFESTS for doc in yaml.safe_load_all(path.read_text()) if doc]


def of_kind(kind: str) -> dict[str, dict[str, Any]]:
    return {r["metadata"]["name"]: r for r in resources() if r["kind"] == kind}


def workloads() -> dict[str, dict[str, Any]]:
    return {**of_kind("Deployment"), **of_kind("StatefulSet")}


def containers(workload: dict[str, Any]) -> list[dict[str, Any]]:
    return workload["spec"]["template"]["spec"]["containers"]


def environment_configmap() -> dict[str, str]:
    return of_kind("ConfigMap")["catalyst-environment"]["data"]


def test_every_manifest_is_valid_kubernetes() -> None:
    result = kubeconform(*MANIFESTS)
    assert result.returncode == 0, result.stdout + result.stderr
    summary = result.stdout.strip().splitlines()[-1]
    assert "Invalid: 0, Errors: 0, Skipped: 0" in summary, summary
    assert f"{len(resources())} resources found" in summary, summary


def test_kubeconform_rejects_a_field_kubernetes_does_not_know() -> None:
    """Proves the offline schemas are really applied (a missing schema would also exit non-zero, differently)."""
    feed = of_kind("Deployment")["feed"]
    containers(feed)[0]["readinessProbe"]["grpcPort"] = 50051
    result = kubeconform(stdin=yaml.safe_dump(feed))
    assert result.returncode == 1
    assert "additional properties 'grpcPort' not allowed" in result.stdout, result.stdout
    assert "Invalid: 1, Errors: 0" in result.stdout


def test_kustomization_lists_every_manifest() -> None:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    assert sorted(kustomization["resources"]) == sorted(p.name for p in MANIFESTS)
    assert kustomization["namespace"] == "catalyst"


def test_rules_configmap_is_generated_from_deploy_config() -> None:
    assert RULES_CONFIGMAP.read_text() == render(), "run `python deploy/k8s/rules_configmap.py`"
    data = of_kind("ConfigMap")["catalyst-rules"]["data"]
    for name, text in data.items():
        assert text == (ROOT / "deploy" / "config" / name).read_text()
    assert set(data) == {path.name for path in (ROOT / "deploy" / "config").glob("*.yaml")}


def test_every_process_that_reads_the_policy_mounts_it_where_the_environment_points() -> None:
    path = Path(environment_configmap()["CATALYST_POLICY_FILE"])
    assert path.name in of_kind("ConfigMap")["catalyst-rules"]["data"]
    readers = {**workloads(), "topics": of_kind("Job")["catalyst-topics"]}
    for name in ("feed", "engagement-worker", "engagement-publisher", "engagement-api", "recognition", "topics"):
        spec = readers[name]["spec"]["template"]["spec"]
        volumes = {v["name"]: v for v in spec["volumes"]}
        mounts = {m["mountPath"]: m["name"] for m in containers(readers[name])[0]["volumeMounts"]}
        assert volumes[mounts[str(path.parent)]]["configMap"]["name"] == "catalyst-rules", name


def test_rules_files_are_mounted_where_the_settings_point() -> None:
    for name, variable in (
        ("engagement-worker", "CATALYST_SCORING_FILE"),
        ("engagement-api", "CATALYST_SCORING_FILE"),
        ("recognition", "CATALYST_BADGE_RULES_FILE"),
        ("recognition", "CATALYST_SCORING_FILE"),
    ):
        container = containers(workloads()[name])[0]
        path = Path(next(e["value"] for e in container["env"] if e["name"] == variable))
        volumes = {v["name"]: v for v in workloads()[name]["spec"]["template"]["spec"]["volumes"]}
        mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
        assert volumes[mounts[str(path.parent)]]["configMap"]["name"] == "catalyst-rules", name
        assert path.name in of_kind("ConfigMap")["catalyst-rules"]["data"], name


def test_environment_variables_are_read_by_the_settings_of_each_process() -> None:
    common = {f"CATALYST_{field.upper()}" for field in CommonSettings.model_fields}
    assert set(environment_configmap()) <= common
    for name, settings in SETTINGS.items():
        workload = workloads().get(name) or of_kind("Job")[f"catalyst-{name}"]
        container = containers(workload)[0]
        assert container["envFrom"] == [{"configMapRef": {"name": "catalyst-environment"}}], name
        fields = {f"CATALYST_{field.upper()}" for field in settings.model_fields}
        unknown = {e["name"] for e in container.get("env", [])} - fields
        assert not unknown, f"{name} sets variables its settings do not read: {unknown}"


def test_tokens_are_checked_against_the_identity_provider_in_production_mode() -> None:
    environment = environment_configmap()
    settings = CommonSettings(**{k.removeprefix("CATALYST_").lower(): v for k, v in environment.items()})
    assert settings.env == "production" and settings.oidc_issuer.startswith("https://")
    for workload in workloads().values():
        names = {e["name"] for e in containers(workload)[0].get("env", [])} - OPERATOR_SECRETS
        assert not {n for n in names if "SECRET" in n or "JWT" in n}, "no signing key reaches a pod"
    assert not of_kind("Secret"), "secrets are created by the operator, never committed"


def test_grpc_services_have_grpc_health_probes_on_their_port() -> None:
    for name, (service, grpc_port, metrics_port) in GRPC_SERVICES.items():
        container = containers(workloads()[name])[0]
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        assert ports == {"grpc": grpc_port, "metrics": metrics_port}, name
        assert container["readinessProbe"]["grpc"] == {"port": grpc_port, "service": service}
        assert container["livenessProbe"]["grpc"] == {"port": grpc_port}
        assert container["startupProbe"]["grpc"] == {"port": grpc_port}
        env = {e["name"]: e.get("value") for e in container["env"]}
        assert env["CATALYST_GRPC_PORT"] == str(grpc_port) and env["CATALYST_METRICS_PORT"] == str(metrics_port)
        svc = of_kind("Service")[name]
        assert {p["name"]: p["port"] for p in svc["spec"]["ports"]} == {"grpc": grpc_port, "metrics": metrics_port}


def test_ports_match_the_services_defaults() -> None:
    for name, settings in (
        ("feed", FeedSettings),
        ("engagement-api", EngagementApiSettings),
        ("recognition", RecognitionSettings),
    ):
        _, grpc_port, metrics_port = GRPC_SERVICES[name]
        assert settings.model_fields["grpc_port"].default == grpc_port, name
        assert settings.model_fields["metrics_port"].default == metrics_port, name
    worker = EngagementWorkerSettings.model_fields
    container = containers(workloads()["engagement-worker"])[0]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"metrics": worker["worker_metrics_port"].default, "web": worker["worker_web_port"].default}
    assert container["livenessProbe"]["httpGet"] == {"path": "/health", "port": "web"}
    publisher = containers(workloads()["engagement-publisher"])[0]
    assert {p["name"]: p["containerPort"] for p in publisher["ports"]} == {
        "metrics": PublisherSettings.model_fields["publisher_metrics_port"].default
    }
    env = {e["name"]: e.get("value") for e in publisher["env"]}
    assert env["CATALYST_PUBLISHER_METRICS_PORT"] == str(
        PublisherSettings.model_fields["publisher_metrics_port"].default
    )


def test_the_publisher_runs_once_beside_the_workers_as_its_own_program() -> None:
    """One replica publishes every employee the workers marked; its own command, not a worker's child."""
    publisher = workloads()["engagement-publisher"]
    assert publisher["kind"] == "Deployment" and publisher["spec"]["replicas"] == 1
    assert containers(publisher)[0]["command"] == ["python", "-m", "services.engagement.publisher"]
    assert containers(workloads()["engagement-worker"])[0]["command"] == ["python", "-m", "services.engagement.worker"]


def test_the_feed_relay_is_a_program_of_its_own_and_the_grpc_replicas_do_not_relay() -> None:
    relay = containers(workloads()["feed-relay"])[0]
    assert relay["command"] == ["python", "-m", "services.feed.relay"]
    port = FeedSettings.model_fields["relay_metrics_port"].default
    assert {p["name"]: p["containerPort"] for p in relay["ports"]} == {"metrics": port}
    assert relay["livenessProbe"]["tcpSocket"] == {"port": "metrics"}
    relay_env = {e["name"]: e.get("value") for e in relay["env"]}
    feed_env = {e["name"]: e.get("value") for e in containers(workloads()["feed"])[0]["env"]}
    assert relay_env["CATALYST_RELAY_METRICS_PORT"] == str(port)
    assert relay_env["CATALYST_REDIS_URL"] == feed_env["CATALYST_REDIS_URL"], "the relay reads the feed's outbox"
    assert feed_env["CATALYST_RELAY_ENABLED"] == "false"


def test_several_engagement_workers_share_the_partitions() -> None:
    worker = of_kind("StatefulSet")["engagement-worker"]
    partitions = load_topics()["interactions"].partitions
    assert 2 <= worker["spec"]["replicas"] <= partitions
    assert partitions % worker["spec"]["replicas"] == 0, "uneven partitions per worker"
    assert of_kind("PodDisruptionBudget")["engagement-worker"]["spec"]["maxUnavailable"] == 1


def test_every_workload_has_requests_a_memory_limit_and_a_disruption_budget() -> None:
    budgets = {
        tuple(sorted(p["spec"]["selector"]["matchLabels"].items())) for p in of_kind("PodDisruptionBudget").values()
    }
    for name, workload in workloads().items():
        for container in containers(workload):
            assert {"cpu", "memory"} <= set(container["resources"]["requests"]), name
            assert "memory" in container["resources"]["limits"], name
            assert container["securityContext"]["readOnlyRootFilesystem"] is True, name
        assert tuple(sorted(workload["spec"]["selector"]["matchLabels"].items())) in budgets, name
        assert workload["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"] is True


def test_the_console_serves_http_on_its_default_port_with_health_probes() -> None:
    container = containers(workloads()["console"])[0]
    port = ConsoleSettings.model_fields["console_port"].default
    assert {p["name"]: p["containerPort"] for p in container["ports"]} == {"http": port}
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"] == {"path": "/healthz", "port": "http"}
    secret = next(e for e in container["env"] if e["name"] == "CATALYST_CONSOLE_SESSION_SECRET")
    assert "value" not in secret and secret["valueFrom"]["secretKeyRef"]["name"] == "catalyst-console"
    assert {p["name"]: p["port"] for p in of_kind("Service")["console"]["spec"]["ports"]} == {"http": port}
