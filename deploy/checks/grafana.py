"""The dashboard's panels and queries, and Grafana's provisioning in the compose stack."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from .documents import Docs
from .report import Report

GRID_COLUMNS = 24  # the width of Grafana's dashboard grid
REQUIRED_PANELS = (
    "started vs approved",
    "time to deliver",
    "delivery outcomes",
    "latency",
    "rate limiting",
    "lane depth",
    "oldest pending",
    "circuit breaker",
)
# Grafana's variables, replaced by values PromQL accepts so that promtool can parse the queries.
GRAFANA_VARIABLES = (
    (re.compile(r"\$__rate_interval|\$__interval|\$__range"), "5m"),
    (re.compile(r"\$\{?\w+(?::\w+)?\}?"), ".*"),
)


def check_dashboards(report: Report, docs: Docs) -> list[tuple[str, str]]:
    """Checks every dashboard; returns its queries as (panel id_refId, PromQL)."""
    paths = sorted(str(p) for p in Path("deploy/grafana/dashboards").glob("*.json"))
    report.check(paths, "grafana: at least one dashboard")
    queries: list[tuple[str, str]] = []
    for path in paths:
        queries += _check_dashboard(report, path, docs[path][0])
    return queries


def _check_dashboard(report: Report, path: str, dash: Any) -> list[tuple[str, str]]:
    panels = dash.get("panels", [])
    ids = [p.get("id") for p in panels]
    report.check(dash.get("uid") and dash.get("title"), f"{path}: has uid and title")
    report.check(len(ids) == len(set(ids)) and None not in ids, f"{path}: panel ids are unique")
    titles = " | ".join(p.get("title", "") for p in panels).lower()
    for want in REQUIRED_PANELS:
        report.check(want in titles, f"{path}: has a panel on {want!r}")
    queries: list[tuple[str, str]] = []
    for panel in panels:
        if panel.get("type") == "row":
            continue
        title, grid = panel.get("title"), panel.get("gridPos", {})
        width = grid.get("w", 0)
        if not (width > 0 and grid.get("h", 0) > 0 and grid.get("x", -1) + width <= GRID_COLUMNS):
            report.bad(f"{path}: panel {title!r} has a bad gridPos {grid}")
        targets = panel.get("targets", [])
        if not targets or not all(t.get("expr") and t.get("refId") for t in targets):
            report.bad(f"{path}: panel {title!r} has a target without expr or refId")
        queries += [(f"{panel['id']}_{t['refId']}", t["expr"]) for t in targets]
    report.ok(f"{path}: {len(panels)} panels, {len(queries)} queries")
    return queries


def _without_grafana_variables(expr: str) -> str:
    for pattern, value in GRAFANA_VARIABLES:
        expr = pattern.sub(value, expr)
    return expr


def write_dashboard_queries(work: Path, queries: list[tuple[str, str]]) -> None:
    """Writes the queries as recording rules, for `promtool check rules` to parse."""
    rules = [
        {"record": f"dashboard:query_{query_id}", "expr": _without_grafana_variables(expr)}
        for query_id, expr in queries
    ]
    with (work / "dashboard-queries.rules.yml").open("w", encoding="utf-8") as f:
        yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}, f, sort_keys=False)


def check_grafana_provisioning(report: Report, docs: Docs, services: dict[str, Any]) -> None:
    provisioning = Path("deploy/grafana/provisioning")
    grafana_volumes = services.get("grafana", {}).get("volumes", [])
    for path in sorted(str(p) for p in (provisioning / "dashboards").glob("*.yml")):
        for provider in docs[path][0].get("providers", []):
            target = provider.get("options", {}).get("path", "")
            mounted = [
                v for v in grafana_volumes if isinstance(v, str) and v.split(":")[1] == target
            ]
            report.check(mounted, f"{path}: provider path {target} is mounted in compose")
    for path in sorted(str(p) for p in (provisioning / "datasources").glob("*.yml")):
        for source in docs[path][0].get("datasources", []):
            report.check(
                source.get("url", "").startswith("http://prometheus:"),
                f"{path}: datasource {source.get('name')} points at compose's prometheus",
            )
