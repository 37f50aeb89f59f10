"""The PrometheusRule against the rules file, and the metric names rules and dashboards use."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from prometheus_client.metrics import MetricWrapperBase

import otpservice.metrics

from .documents import Docs
from .report import Report

RULES_PATH = "deploy/prometheus/rules/otpservice.rules.yml"
PROMETHEUS_RULE_PATH = "deploy/kubernetes/prometheusrule.yaml"
GENERATED_HEADER = (
    "# GENERATED from deploy/prometheus/rules/otpservice.rules.yml by\n"
    "# `bash deploy/check.sh --write`; edit the rules file, not this one.\n"
    "# Your Prometheus resource selects PrometheusRules by label (kube-prometheus-stack:\n"
    "# `release: <helm release>`): add that label in an overlay if needed.\n"
)


class _BlockStringDumper(yaml.SafeDumper):
    """Writes multi-line strings (PromQL, descriptions) as `|` blocks, as the rules file does."""


def _represent_str(dumper: _BlockStringDumper, text: str) -> yaml.ScalarNode:
    style = "|" if "\n" in text else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", text, style=style)


_BlockStringDumper.add_representer(str, _represent_str)


def write_prometheus_rule(rules: Any) -> dict[str, Any]:
    prometheus_rule = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {"name": "otpservice", "labels": {"app.kubernetes.io/name": "otpservice"}},
        "spec": {"groups": rules["groups"]},
    }
    with Path(PROMETHEUS_RULE_PATH).open("w", encoding="utf-8") as f:
        f.write(GENERATED_HEADER)
        yaml.dump(
            prometheus_rule,
            f,
            Dumper=_BlockStringDumper,
            sort_keys=False,
            width=100,
            allow_unicode=True,
        )
    return prometheus_rule


def check_prometheus_rule(report: Report, docs: Docs, rules: Any, write: bool) -> None:
    if write:
        docs[PROMETHEUS_RULE_PATH] = [write_prometheus_rule(rules)]
        report.ok(f"wrote {PROMETHEUS_RULE_PATH}")
    if PROMETHEUS_RULE_PATH not in docs:
        report.bad(f"{PROMETHEUS_RULE_PATH} is missing: run bash deploy/check.sh --write")
        return
    groups = docs[PROMETHEUS_RULE_PATH][0].get("spec", {}).get("groups")
    report.check(
        groups == rules["groups"],
        f"{PROMETHEUS_RULE_PATH} matches {RULES_PATH} (if not: bash deploy/check.sh --write)",
    )


# The sample names a family of each type exposes, as suffixes of its name. prometheus_client
# names a counter's family without the `_total` every sample of it carries; a histogram's or
# summary's family name is accepted too, as the hand-kept list this replaces did.
SAMPLE_SUFFIXES: dict[str, tuple[str, ...]] = {
    "counter": ("_total",),
    "histogram": ("", "_bucket", "_count", "_sum"),
    "summary": ("", "_count", "_sum"),
    "info": ("_info",),
}
# An otp_ name in PromQL, unless it is part of a longer name or a recording rule's level:name:op.
METRIC_NAME = re.compile(r"(?<![\w:])otp_[a-z0-9_]+")


def service_metric_names() -> frozenset[str]:
    """Every sample name the service exports, read from the objects otpservice.metrics defines.

    So a metric added there is known here too: a rule or panel naming anything else has a typo.
    """
    names: set[str] = set()
    for value in vars(otpservice.metrics).values():
        if isinstance(value, MetricWrapperBase):
            for family in value.describe():
                suffixes = SAMPLE_SUFFIXES.get(family.type, ("",))
                names.update(family.name + suffix for suffix in suffixes)
    return frozenset(names)


def check_metric_names(report: Report, rules: Any, queries: list[tuple[str, str]]) -> None:
    known = service_metric_names()
    exprs = [r["expr"] for g in rules["groups"] for r in g["rules"]] + [e for _, e in queries]
    unknown = sorted({n for e in exprs for n in METRIC_NAME.findall(e) if n not in known})
    report.check(
        not unknown,
        "rules and dashboards use only the service's metric families"
        + (f": not {unknown}" if unknown else ""),
    )
