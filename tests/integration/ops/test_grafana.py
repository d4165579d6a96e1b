"""The Grafana dashboard: valid JSON that Grafana provisions, covering what operators watch, built only from
series that exist (exported by a process, recorded by a rule, or added by Prometheus)."""

from __future__ import annotations

import json
from typing import Any

import yaml

from tests.integration.ops.promql import known_series, metric_names
from tests.integration.ops.tools import ROOT

GRAFANA = ROOT / "deploy" / "grafana"
DASHBOARDS = sorted((GRAFANA / "dashboards").glob("*.json"))
# Prometheus adds ALERTS for every pending or firing alert.
SERIES = known_series() | {"ALERTS"}


def panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    flat = []
    for panel in dashboard["panels"]:
        flat.append(panel)
        flat += panel.get("panels", [])
    return flat


def dashboard() -> dict[str, Any]:
    return json.loads((GRAFANA / "dashboards" / "catalyst.json").read_text())


def test_dashboards_are_json_with_unique_uids_and_panel_ids() -> None:
    assert DASHBOARDS
    uids = [json.loads(path.read_text())["uid"] for path in DASHBOARDS]
    assert len(uids) == len(set(uids))
    for path in DASHBOARDS:
        ids = [p["id"] for p in panels(json.loads(path.read_text()))]
        assert len(ids) == len(set(ids)), path.name


def test_dashboard_uses_the_provisioned_prometheus_datasource() -> None:
    datasources = yaml.safe_load((GRAFANA / "provisioning" / "datasources" / "prometheus.yml").read_text())
    uid = next(d["uid"] for d in datasources["datasources"] if d["type"] == "prometheus")
    for panel in panels(dashboard()):
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == {"type": "prometheus", "uid": uid}, panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == uid, panel["title"]


def test_compose_provisions_the_dashboard_folder() -> None:
    provider = yaml.safe_load((GRAFANA / "provisioning" / "dashboards" / "catalyst.yml").read_text())
    path = provider["providers"][0]["options"]["path"]
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    volumes = compose["services"]["grafana"]["volumes"]
    assert f"./deploy/grafana/dashboards:{path}:ro" in volumes
    assert "./deploy/grafana/provisioning:/etc/grafana/provisioning:ro" in volumes


def test_dashboard_covers_event_flow_lag_latency_badges_and_grpc_health() -> None:
    rows = {p["title"] for p in dashboard()["panels"] if p["type"] == "row"}
    assert {"Event flow", "Lag", "gRPC health", "Badges"} <= rows
    exprs = " ".join(t["expr"] for p in panels(dashboard()) for t in p.get("targets", []))
    for needed in ("kafka_consumergroup_lag", "grpc_server_handling_seconds", "recognition_badge", "feed_outbox"):
        assert needed in exprs, needed


def test_every_panel_query_uses_existing_series() -> None:
    board = dashboard()
    queries = [(p["title"], t["expr"]) for p in panels(board) for t in p.get("targets", [])]
    queries += [(a["name"], a["expr"]) for a in board["annotations"]["list"]]
    assert len(queries) > 20
    for title, expr in queries:
        names = metric_names(expr)
        assert names, f"{title}: no series in {expr!r}"
        assert names <= SERIES, f"{title}: unknown series {names - SERIES}"


def test_panels_do_not_overlap() -> None:
    taken: set[tuple[int, int]] = set()
    for panel in panels(dashboard()):
        g = panel["gridPos"]
        assert g["x"] + g["w"] <= 24, panel["title"]
        cells = {(x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])}
        assert not cells & taken, f"{panel['title']} overlaps another panel"
        taken |= cells
