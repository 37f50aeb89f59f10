"""Kubernetes manifests against their schemas: kubernetes-validate for the core API, a subset of
the monitoring.coreos.com/v1 CRDs for the Prometheus Operator's resources; the Kustomization.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema  # installed with kubernetes-validate
import kubernetes_validate
from kubernetes_validate.utils import SchemaNotFoundError

from .documents import Docs
from .report import Report

Resources = dict[tuple[str, str], Any]
OPERATOR_API = "monitoring.coreos.com/"


def validate_kubernetes(
    report: Report, docs: Docs, versions: list[str]
) -> tuple[Resources, tuple[str, Any] | None]:
    """Validates each core manifest; returns the resources by (kind, name) and the Kustomization."""
    resources: Resources = {}
    kustomization = None
    for path in sorted(str(p) for p in Path("deploy/kubernetes").glob("*.yaml")):
        for res in docs[path]:
            kind = res.get("kind", "")
            if kind == "Kustomization":
                kustomization = (path, res)
                continue
            name = res.get("metadata", {}).get("name", "?")
            resources[(kind, name)] = res
            if not res.get("apiVersion", "").startswith(OPERATOR_API):  # CRDs: see below
                _validate_core(report, res, f"{path} {kind}/{name}", versions)
    return resources, kustomization


def _validate_core(report: Report, res: Any, what: str, versions: list[str]) -> None:
    for version in versions:
        try:
            kubernetes_validate.validate(res, version, strict=True)
        except SchemaNotFoundError:
            report.bad(
                f"kubernetes-validate {version}: {what}: no schema (a typo in apiVersion/kind?)"
            )
        except kubernetes_validate.ValidationError as exc:
            where = ".".join(map(str, exc.path))
            report.bad(f"kubernetes-validate --strict {version}: {what}: {where}: {exc.message}")
        else:
            report.ok(f"kubernetes-validate --strict {version}: {what}")


# The Prometheus Operator's resources. kubernetes-validate bundles only the core API's schemas, so
# these are checked against the fields of the monitoring.coreos.com/v1 CRDs they use, unknown
# fields refused.
STRING = {"type": "string"}
BOOLEAN = {"type": "boolean"}
STRING_MAP = {"type": "object", "additionalProperties": STRING}
DURATION = {
    "type": "string",
    "pattern": r"^(0|(\d+y)?(\d+w)?(\d+d)?(\d+h)?(\d+m)?(\d+s)?(\d+ms)?)$",
}


def _object(properties: dict[str, Any], *required: str) -> dict[str, Any]:
    """A JSON schema for an object with these properties and no others."""
    schema = {"type": "object", "properties": properties, "additionalProperties": False}
    return {**schema, "required": list(required)} if required else schema


def _array(items: dict[str, Any]) -> dict[str, Any]:
    return {"type": "array", "items": items}


def _crd(kind: str, spec: dict[str, Any]) -> dict[str, Any]:
    metadata = {
        "name": STRING,
        "namespace": STRING,
        "labels": STRING_MAP,
        "annotations": STRING_MAP,
    }
    return _object(
        {
            "apiVersion": {"const": "monitoring.coreos.com/v1"},
            "kind": {"const": kind},
            "metadata": _object(metadata, "name"),
            "spec": spec,
        },
        "apiVersion",
        "kind",
        "metadata",
        "spec",
    )


SCRAPE_ENDPOINT = _object(
    {
        "port": STRING,
        "targetPort": {"type": ["string", "integer"]},
        "path": STRING,
        "scheme": {"enum": ["http", "https"]},
        "interval": DURATION,
        "scrapeTimeout": DURATION,
        "honorLabels": BOOLEAN,
        "honorTimestamps": BOOLEAN,
        "metricRelabelings": {"type": "array"},
        "relabelings": {"type": "array"},
    }
)
SERVICE_MONITOR_SPEC = _object(
    {
        "selector": _object({"matchLabels": STRING_MAP, "matchExpressions": {"type": "array"}}),
        "jobLabel": STRING,
        "namespaceSelector": _object({"any": BOOLEAN, "matchNames": _array(STRING)}),
        "endpoints": {**_array(SCRAPE_ENDPOINT), "minItems": 1},
    },
    "selector",
    "endpoints",
)
RULE = _object(
    {
        "record": STRING,
        "alert": STRING,
        "expr": STRING,
        "for": DURATION,
        "labels": STRING_MAP,
        "annotations": STRING_MAP,
    },
    "expr",
)
RULE_GROUP = _object({"name": STRING, "interval": DURATION, "rules": _array(RULE)}, "name", "rules")
CRD_SCHEMAS = {
    "ServiceMonitor": _crd("ServiceMonitor", SERVICE_MONITOR_SPEC),
    "PrometheusRule": _crd("PrometheusRule", _object({"groups": _array(RULE_GROUP)}, "groups")),
}


def check_operator_resources(report: Report, resources: Resources) -> None:
    for (kind, name), res in resources.items():
        if not res.get("apiVersion", "").startswith(OPERATOR_API):
            continue
        if kind not in CRD_SCHEMAS:
            report.bad(f"{kind}/{name}: no schema here for this monitoring.coreos.com kind")
            continue
        try:
            jsonschema.validate(res, CRD_SCHEMAS[kind])
        except jsonschema.ValidationError as exc:
            where = ".".join(map(str, exc.path))
            report.bad(f"CRD subset schema: {kind}/{name}: {where}: {exc.message}")
        else:
            report.ok(f"CRD subset schema: {kind}/{name}")


def check_kustomization(report: Report, kustomization: tuple[str, Any] | None) -> None:
    if not kustomization:
        return
    path, res = kustomization
    listed = set(res.get("resources", []))
    here = Path(path).parent
    report.check(all((here / r).is_file() for r in listed), f"{path}: every resource exists")
    files = {p.name for p in Path("deploy/kubernetes").glob("*.yaml")}
    missing = sorted(files - listed - {"kustomization.yaml", "secret.example.yaml"})
    report.check(
        not missing,
        f"{path} lists every manifest but the Secret example"
        + (f": not {missing}" if missing else ""),
    )
    report.check(
        "secret.example.yaml" not in listed, f"{path} does not apply the placeholder Secret"
    )
