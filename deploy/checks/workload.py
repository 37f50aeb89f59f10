"""Cross-references of the Deployment, and the deployment rules of the brief."""

from __future__ import annotations

from typing import Any

from .kubernetes import Resources
from .report import Report

DEFAULT_SHUTDOWN_DEADLINE = 20
"""OTP_SHUTDOWN_DEADLINE_SECONDS when unset. A copy: these checks run without the service's
dependencies; tests/unit/test_settings.py holds it to the service's own default."""
DEFAULT_GRACE_PERIOD = 30  # Kubernetes' terminationGracePeriodSeconds when unset
POD_TMP = "/tmp"  # noqa: S108 (the container's /tmp, looked up in the manifest; nothing is written)


def _subset(small: Any, big: Any) -> bool:
    return bool(small) and all(big.get(k) == v for k, v in small.items())


def check_deployment(report: Report, resources: Resources) -> None:
    dep = resources.get(("Deployment", "otpservice"))
    svc = resources.get(("Service", "otpservice"))
    exist = "Deployment/otpservice and Service/otpservice exist"
    if dep is None or svc is None:
        report.bad(exist)
        return
    report.ok(exist)
    spec = dep["spec"]["template"]["spec"]
    (ctr,) = spec["containers"]
    env = {e["name"]: e.get("value") for e in ctr.get("env", [])}
    _check_selectors(report, dep, svc, ctr)
    _check_companions(report, resources, svc, dep["spec"]["template"]["metadata"]["labels"])
    _check_config_refs(report, resources, spec, ctr)
    _check_termination(report, spec, ctr, env)
    _check_security_context(report, spec, ctr)
    _check_mounts_and_resources(report, spec, ctr, env)


def _check_selectors(report: Report, dep: Any, svc: Any, ctr: Any) -> None:
    pod_labels = dep["spec"]["template"]["metadata"]["labels"]
    port_names = {p["name"] for p in ctr.get("ports", [])}
    report.check(
        _subset(dep["spec"]["selector"]["matchLabels"], pod_labels),
        "Deployment selector matches its pod labels",
    )
    report.check("replicas" not in dep["spec"], "Deployment leaves replicas to the HPA")
    report.check(_subset(svc["spec"]["selector"], pod_labels), "Service selector matches the pods")
    report.check(
        all(p["targetPort"] in port_names for p in svc["spec"]["ports"]),
        "Service targetPorts name container ports",
    )


def _check_companions(report: Report, resources: Resources, svc: Any, pod_labels: Any) -> None:
    """The HPA, PDB and ServiceMonitor point at the Deployment, its pods and its Service."""
    hpa = resources.get(("HorizontalPodAutoscaler", "otpservice"))
    report.check(
        hpa is not None
        and hpa["spec"]["scaleTargetRef"]["name"] == "otpservice"
        and hpa["spec"]["scaleTargetRef"]["kind"] == "Deployment",
        "HPA targets Deployment/otpservice",
    )
    pdb = resources.get(("PodDisruptionBudget", "otpservice"))
    report.check(
        pdb is not None and _subset(pdb["spec"]["selector"]["matchLabels"], pod_labels),
        "PDB selects the pods",
    )
    if hpa and pdb and "maxUnavailable" in pdb["spec"]:
        report.check(
            hpa["spec"].get("minReplicas", 1) > pdb["spec"]["maxUnavailable"],
            "HPA minReplicas > PDB maxUnavailable (a drain never takes the last pod)",
        )
    smon = resources.get(("ServiceMonitor", "otpservice"))
    if smon:
        report.check(
            _subset(smon["spec"]["selector"]["matchLabels"], svc["metadata"]["labels"]),
            "ServiceMonitor selects the Service",
        )
        svc_ports = {p["name"] for p in svc["spec"]["ports"]}
        report.check(
            all(
                e.get("port") in svc_ports and e.get("path") == "/metrics"
                for e in smon["spec"]["endpoints"]
            ),
            "ServiceMonitor scrapes /metrics on a Service port",
        )


def _check_config_refs(report: Report, resources: Resources, spec: Any, ctr: Any) -> None:
    env_from, volumes = ctr.get("envFrom", []), spec.get("volumes", [])
    refs = [("ConfigMap", s["configMapRef"]["name"]) for s in env_from if "configMapRef" in s]
    refs += [("Secret", s["secretRef"]["name"]) for s in env_from if "secretRef" in s]
    refs += [("ConfigMap", v["configMap"]["name"]) for v in volumes if "configMap" in v]
    refs += [("Secret", v["secret"]["secretName"]) for v in volumes if "secret" in v]
    for kind, name in refs:
        report.check(
            (kind, name) in resources,
            f"{kind}/{name} used by the Deployment has an example manifest",
        )


def _check_termination(report: Report, spec: Any, ctr: Any, env: dict[str, Any]) -> None:
    report.check(ctr["readinessProbe"]["httpGet"]["path"] == "/readyz", "readinessProbe on /readyz")
    report.check(ctr["livenessProbe"]["httpGet"]["path"] == "/healthz", "livenessProbe on /healthz")
    pre_stop = ctr.get("lifecycle", {}).get("preStop", {})
    cmd = pre_stop.get("exec", {}).get("command", [])
    sleep = int(cmd[-1]) if cmd[:1] == ["sleep"] else pre_stop.get("sleep", {}).get("seconds", 0)
    report.check(sleep > 0, f"preStop sleeps ({sleep} s) so endpoints drain before SIGTERM")
    deadline = int(env.get("OTP_SHUTDOWN_DEADLINE_SECONDS") or DEFAULT_SHUTDOWN_DEADLINE)
    grace = spec.get("terminationGracePeriodSeconds", DEFAULT_GRACE_PERIOD)
    report.check(
        grace > sleep + deadline,
        f"terminationGracePeriodSeconds {grace} > preStop {sleep}"
        f" + OTP_SHUTDOWN_DEADLINE_SECONDS {deadline}",
    )


def _check_security_context(report: Report, spec: Any, ctr: Any) -> None:
    """The restricted Pod Security Standard."""
    psc, csc = spec.get("securityContext", {}), ctr.get("securityContext", {})
    report.check(psc.get("runAsNonRoot") is True or csc.get("runAsNonRoot") is True, "runAsNonRoot")
    report.check(
        (csc.get("runAsUser") or psc.get("runAsUser") or 0) > 0, "numeric non-root runAsUser"
    )
    report.check(csc.get("allowPrivilegeEscalation") is False, "allowPrivilegeEscalation: false")
    report.check(csc.get("readOnlyRootFilesystem") is True, "readOnlyRootFilesystem: true")
    report.check(csc.get("capabilities", {}).get("drop") == ["ALL"], "capabilities drop ALL")
    seccomp = csc.get("seccompProfile") or psc.get("seccompProfile") or {}
    report.check(seccomp.get("type") == "RuntimeDefault", "seccompProfile RuntimeDefault")


def _check_mounts_and_resources(report: Report, spec: Any, ctr: Any, env: dict[str, Any]) -> None:
    empty_dirs = {v["name"] for v in spec.get("volumes", []) if "emptyDir" in v}
    mounts = {m["mountPath"]: m["name"] for m in ctr.get("volumeMounts", [])}
    report.check(mounts.get(POD_TMP) in empty_dirs, f"{POD_TMP} is an emptyDir (read-only root)")
    if int(env.get("OTP_WORKERS") or 1) > 1:
        report.check(
            mounts.get(env.get("PROMETHEUS_MULTIPROC_DIR")) in empty_dirs,
            "OTP_WORKERS > 1: PROMETHEUS_MULTIPROC_DIR is an emptyDir mount",
        )
    report.check(
        env.get("OTP_CONFIG_FILE", "").startswith("/etc/otpservice/")
        and mounts.get("/etc/otpservice") is not None,
        "OTP_CONFIG_FILE is on the mounted config volume",
    )
    res = ctr.get("resources", {})
    report.check(
        all(k in res.get(t, {}) for t in ("requests", "limits") for k in ("cpu", "memory")),
        "cpu and memory requests and limits are set",
    )
    if env.get("OTP_HASH_THREADS") is None:
        report.bad("OTP_HASH_THREADS is set (its default is the node's core count, not the pod's)")
