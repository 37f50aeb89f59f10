"""`otpservice serve` with several worker processes, under each ASGI server: /metrics sums what
every worker counted."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.integration.conftest import API_KEY, PEPPER, tenant_toml
from tests.support.ports import free_port
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
    port = free_port()
    env = {
        **os.environ,
        "OTP_REDIS_URL": redis_server.url,
        "OTP_PEPPER": "base64:" + PEPPER,
        "OTP_CONFIG_FILE": str(config),
        "OTP_ARGON2_PROFILE": "test",
        "OTP_PORT": str(port),
        "OTP_WORKERS": "2",
        "OTP_SERVER": request.param,
        "OTP_SANDBOX_ECHO": "false",
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "otpservice", "serve"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            assert process.poll() is None, "the service exited at start"
            assert time.monotonic() < deadline, "the service did not start"
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        yield base, metrics_dir
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=5)


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
