"""Prometheus configuration and rules: promtool checks them, runs their unit tests, and every alert is tested,
documented and built only from series Catalyst's processes really export."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import yaml

from tests.integration.ops.promql import RULES_DIR, known_series, metric_names
from tests.integration.ops.tools import ROOT, tool

PROMETHEUS_DIR = ROOT / "deploy" / "prometheus"
RULE_FILES = sorted(RULES_DIR.glob("*.yml"))
RULE_TESTS = sorted((PROMETHEUS_DIR / "tests").glob("*.yml"))
OPERATIONS_DOC = ROOT / "docs" / "operations.md"


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([tool("promtool"), *args], capture_output=True, text=True, timeout=120)


def rules() -> list[dict[str, Any]]:
    return [
        rule for path in RULE_FILES for group in yaml.safe_load(path.read_text())["groups"] for rule in group["rules"]
    ]


def alerts() -> dict[str, dict[str, Any]]:
    return {rule["alert"]: rule for rule in rules() if "alert" in rule}


def test_promtool_accepts_every_rule_file() -> None:
    result = promtool("check", "rules", *map(str, RULE_FILES))
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("SUCCESS") == len(RULE_FILES)


def test_promtool_rule_unit_tests_pass() -> None:
    assert RULE_TESTS, "no rule tests found"
    result = promtool("test", "rules", *map(str, RULE_TESTS))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_promtool_accepts_the_local_config_with_its_rules() -> None:
    result = promtool("check", "config", str(PROMETHEUS_DIR / "prometheus.local.yml"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{len(RULE_FILES)} rule files found" in result.stdout


def test_promtool_accepts_the_compose_config_with_its_rules(tmp_path: Path) -> None:
    """docker-compose mounts rules/ at /etc/prometheus/rules; check the same config against the real files."""
    config = yaml.safe_load((PROMETHEUS_DIR / "prometheus.yml").read_text())
    assert config["rule_files"] == ["/etc/prometheus/rules/*.yml"]
    config["rule_files"] = [str(RULES_DIR / "*.yml")]
    checked = tmp_path / "prometheus.yml"
    checked.write_text(yaml.safe_dump(config))
    result = promtool("check", "config", str(checked))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{len(RULE_FILES)} rule files found" in result.stdout


def test_local_config_scrapes_every_process_on_loopback() -> None:
    config = yaml.safe_load((PROMETHEUS_DIR / "prometheus.local.yml").read_text())
    targets = {job["job_name"]: job["static_configs"][0]["targets"] for job in config["scrape_configs"]}
    assert targets == {
        "feed": ["127.0.0.1:9101"],
        "feed-relay": ["127.0.0.1:9108"],
        "engagement-api": ["127.0.0.1:9102"],
        "engagement-worker": ["127.0.0.1:9103"],
        "engagement-publisher": ["127.0.0.1:9106"],
        "recognition": ["127.0.0.1:9104"],
        "kafka-lag-exporter": ["127.0.0.1:9105"],
    }


def test_every_alert_has_a_firing_unit_test() -> None:
    fired: set[str] = set()
    for path in RULE_TESTS:
        for case in yaml.safe_load(path.read_text())["tests"]:
            for check in case.get("alert_rule_test", []):
                if check.get("exp_alerts"):
                    fired.add(check["alertname"])
    assert set(alerts()) <= fired, f"alerts without a firing test: {set(alerts()) - fired}"


def test_every_alert_has_severity_annotations_and_a_runbook_section() -> None:
    headings = re.findall(r"^#{2,4} (.+)$", OPERATIONS_DOC.read_text(), flags=re.MULTILINE)
    anchors = {re.sub(r"[^a-z0-9 -]", "", h.lower()).strip().replace(" ", "-") for h in headings}
    for name, alert in alerts().items():
        assert alert["labels"]["severity"] in {"warning", "critical"}, name
        assert {"summary", "description", "runbook_url"} <= set(alert["annotations"]), name
        doc, _, anchor = alert["annotations"]["runbook_url"].partition("#")
        assert doc == "docs/operations.md" and anchor in anchors, f"{name}: no section #{anchor} in {doc}"


def test_rules_use_only_series_the_processes_export() -> None:
    known = known_series()
    for rule in rules():
        unknown = metric_names(rule["expr"]) - known
        assert not unknown, f"{rule.get('alert') or rule.get('record')} uses unknown series {unknown}"


def test_metric_names_follow_prometheus_conventions() -> None:
    """Counters end in _total, durations are in seconds, nothing uses milliseconds."""
    for name in known_series():
        assert not re.search(r"_(ms|milliseconds|millis)(_|$)", name), name
        assert re.fullmatch(r"[a-z_:][a-z0-9_:]*", name), name
    for rule in rules():
        if "record" in rule:
            assert re.fullmatch(r"[a-z_]+:[a-z0-9_]+:[a-z0-9_]+", rule["record"]), rule["record"]
