"""The compose stack: its services, Redis's flags, what it builds and mounts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .documents import Docs
from .report import Report

COMPOSE_PATH = "deploy/compose/compose.yaml"


def check_compose(report: Report, docs: Docs) -> dict[str, Any]:
    """Checks deploy/compose/compose.yaml; returns its services."""
    services: dict[str, Any] = docs[COMPOSE_PATH][0].get("services", {})
    report.check(
        {"redis", "otpservice", "prometheus", "grafana"} <= set(services),
        "compose: redis, otpservice, prometheus, grafana",
    )
    redis_cmd = " ".join(map(str, services.get("redis", {}).get("command", [])))
    report.check("--appendonly yes" in redis_cmd, "compose: redis runs with --appendonly yes")
    report.check(
        "--maxmemory-policy noeviction" in redis_cmd,
        "compose: redis runs with --maxmemory-policy noeviction",
    )
    build = services.get("otpservice", {}).get("build", {})
    dockerfile = Path(
        "deploy/compose", build.get("context", "."), build.get("dockerfile", "Dockerfile")
    )
    report.check(dockerfile.is_file(), "compose: otpservice builds the repository's Dockerfile")
    for sname, service in services.items():
        for vol in service.get("volumes", []):
            src = vol.split(":")[0] if isinstance(vol, str) else vol.get("source", "")
            if src.startswith("."):
                report.check(
                    Path("deploy/compose", src).exists(), f"compose: {sname} mounts existing {src}"
                )
    for sname, service in services.items():
        image = service.get("image", "")
        if "build" not in service:
            report.check(
                ":" in image and not image.endswith(":latest"),
                f"compose: {sname} image is pinned ({image})",
            )
    return services
