"""`otpservice serve` with several worker processes, under each ASGI server: /metrics sums what
every worker counted."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.integration.conftest import API_KEY, PEPPER, tenant_toml
from tests.support.ports import free_port
from tests.support.processes import ServiceProcess
from tests.support.redis_servers import RedisServer


@pytest.fixture(params=["uvicorn", "granian"])
def two_workers(
    request: pytest.FixtureRequest, redis_server: RedisServer, redis: object, tmp_path: Path
) -> Iterator[tuple[str, Path]]:
    config = tmp_path / "otp.toml"
    config.write_text(tenant_toml("acme", API_KEY, {}))
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    (metrics_dir / "counter_999999.db").write_bytes(b"stale")  # a previous run's leftovers
    env = {
        **os.environ,
        "OTP_REDIS_URL": redis_server.url,
        "OTP_PEPPER": "base64:" + PEPPER,
        "OTP_CONFIG_FILE": str(config),
        "OTP_ARGON2_PROFILE": "test",
        "OTP_HOST": "127.0.0.1",
        "OTP_PORT": str(free_port()),
        "OTP_WORKERS": "2",
        "OTP_SERVER": request.param,
        "OTP_SANDBOX_ECHO": "false",
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
    }
    service = ServiceProcess(f"otpservice-{request.param}", env, log_path=tmp_path / "service.log")
    try:
        service.start()
        service.wait_http(f"{service.url}/healthz", timeout=20)
        yield service.url, metrics_dir
    finally:
        service.stop(timeout=15)


def _healthz_count(text: str) -> float:
    pattern = (
        r'otp_http_request_duration_seconds_count\{method="GET",route="/healthz",status="200"\}'
        r" ([0-9.e+]+)"
    )
    match = re.search(pattern, text)
    return float(match.group(1)) if match else 0.0


def test_metrics_from_two_workers_are_summed(two_workers: tuple[str, Path]) -> None:
    base, metrics_dir = two_workers
    assert not (metrics_dir / "counter_999999.db").exists(), "stale files must be cleared at start"
    sent = 1  # the readiness probe above
    pids: set[str] = set()
    # A new connection per request lets the kernel hand requests to both workers.
    for _ in range(200):
        assert httpx.get(f"{base}/healthz", timeout=5).status_code == 200
        sent += 1
        pids = {
            m.group(1)
            for p in metrics_dir.glob("histogram_*.db")
            if (m := re.match(r"histogram_(\d+)\.db", p.name))
        }
        if len(pids) >= 2 and sent >= 20:
            break
    assert len(pids) >= 2, "both workers should have served requests"
    metrics = httpx.get(f"{base}/metrics", timeout=5).text
    assert _healthz_count(metrics) == sent
