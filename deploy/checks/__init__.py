"""Structure checks for deploy/: everything a schema validator cannot see on its own.

deploy/check.sh runs them, from the repository root:

    python -m deploy.checks WORKDIR [--write] --k8s-version V [--k8s-version V ...]

One `ok` or `FAIL` line per check; exit status 1 if any failed. Each module checks one part:
documents (every YAML and JSON file parses), prometheus (the PrometheusRule, metric names),
kubernetes (schemas, the Kustomization), workload (the Deployment and what points at it), compose,
grafana.
"""
