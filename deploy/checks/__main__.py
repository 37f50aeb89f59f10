"""Command line: runs every check in order and returns the exit status."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from .compose import check_compose
from .documents import parse_deploy_files
from .grafana import check_dashboards, check_grafana_provisioning, write_dashboard_queries
from .kubernetes import check_kustomization, check_operator_resources, validate_kubernetes
from .prometheus import (
    PROMETHEUS_RULE_PATH,
    RULES_PATH,
    check_metric_names,
    check_prometheus_rule,
)
from .report import Report
from .workload import check_deployment


def run_checks(work: Path, write: bool, versions: list[str]) -> int:
    """Runs every check from the repository root; returns the exit status."""
    report = Report()
    docs = parse_deploy_files(report)
    if report.failures:  # everything below reads the parsed files
        return 1
    rules = docs[RULES_PATH][0]
    check_prometheus_rule(report, docs, rules, write)
    resources, kustomization = validate_kubernetes(report, docs, versions)
    check_operator_resources(report, resources)
    check_deployment(report, resources)
    check_kustomization(report, kustomization)
    services = check_compose(report, docs)
    queries = check_dashboards(report, docs)
    write_dashboard_queries(work, queries)
    check_grafana_provisioning(report, docs, services)
    check_metric_names(report, rules, queries)
    return 1 if report.failures else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m deploy.checks", description="Structure checks for deploy/."
    )
    parser.add_argument("workdir", type=Path, help="where to leave dashboard-queries.rules.yml")
    parser.add_argument(
        "--write",
        action="store_true",
        help=f"first regenerate {PROMETHEUS_RULE_PATH} from {RULES_PATH}",
    )
    parser.add_argument(
        "--k8s-version",
        action="append",
        required=True,
        dest="k8s_versions",
        metavar="VERSION",
        help="a Kubernetes version to validate the manifests against (repeatable)",
    )
    args = parser.parse_args(argv)
    work = args.workdir.resolve()
    # Paths are checked, and reported, relative to the repository root.
    os.chdir(Path(__file__).resolve().parents[2])
    return run_checks(work, args.write, args.k8s_versions)


if __name__ == "__main__":
    sys.exit(main())
