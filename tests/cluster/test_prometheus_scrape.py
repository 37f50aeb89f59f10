"""A real Prometheus scrapes a running service and evaluates the repository's recording rules.

Prometheus (Debian's `prometheus` package, or PROMETHEUS_BIN; skipped when absent, a failure
under OTP_TEST_REQUIRE_BINARIES=1) runs on a loopback port with a config generated here: one
scrape job for the service, 1 s scrape and evaluation intervals, and deploy/prometheus/rules/*.yml
with every group's interval set to 1 s. The test runs a login flow and reads recording rules back
through the HTTP API.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import yaml

from otpservice.app import create_app
from otpservice.providers.sandbox import SandboxGateway
from tests.cluster.conftest import HEADERS, next_code, service_settings, until
from tests.support.asgi import serving
from tests.support.binaries import require_binary
from tests.support.ports import free_port
from tests.support.processes import ManagedProcess
from tests.support.redis_servers import RedisServer

RULES_DIR = Path(__file__).resolve().parents[2] / "deploy" / "prometheus" / "rules"
NUMBER = "+48601234567"


def prometheus_binary() -> str:
    return require_binary("prometheus", "PROMETHEUS_BIN", "apt-get install -y prometheus")


def fast_rules(directory: Path) -> list[str]:
    """Copies of the repository's rule files, every group evaluated each second."""
    files = sorted(RULES_DIR.glob("*.yml")) + sorted(RULES_DIR.glob("*.yaml"))
    assert files, f"no rule files in {RULES_DIR}"
    copies = []
    for source in files:
        rules = yaml.safe_load(source.read_text())
        for group in rules["groups"]:
            group["interval"] = "1s"
        copy = directory / source.name
        copy.write_text(yaml.safe_dump(rules))
        copies.append(str(copy))
    return copies


@contextlib.contextmanager
def prometheus(binary: str, tmp_path: Path, target_port: int) -> Iterator[str]:
    """A Prometheus scraping 127.0.0.1:target_port; yields its base URL; always stopped, its
    log shown when the block fails."""
    port = free_port()
    config = tmp_path / "prometheus.yml"
    config.write_text(
        yaml.safe_dump(
            {
                "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                "rule_files": fast_rules(tmp_path),
                "scrape_configs": [
                    {
                        "job_name": "otpservice",
                        "scrape_timeout": "1s",
                        "static_configs": [{"targets": [f"127.0.0.1:{target_port}"]}],
                    }
                ],
            }
        )
    )
    process = ManagedProcess(
        "prometheus",
        [
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--log.level=warn",
        ],
        log_path=tmp_path / "prometheus.log",
        cwd=tmp_path,
    )
    process.start()
    try:
        yield f"http://127.0.0.1:{port}"
    except BaseException:
        print(process.logs())  # noqa: T201 - shown on failure
        raise
    finally:
        process.stop(timeout=10)


async def test_prometheus_scrapes_the_service_and_evaluates_the_recording_rules(
    single_backend: RedisServer, tmp_path: Path
) -> None:
    binary = prometheus_binary()
    client = single_backend.client()
    await client.flushall()
    await client.aclose()
    settings = service_settings(single_backend.url, tmp_path)
    sms = SandboxGateway(echo=False)
    service_port = free_port()
    deadline = time.monotonic() + 30

    async with (
        serving(create_app(settings, gateway=sms), service_port),
        httpx.AsyncClient(timeout=5) as http,
    ):
        with prometheus(binary, tmp_path, service_port) as prom:

            async def ready() -> bool:
                return (await http.get(f"{prom}/-/ready")).status_code == 200

            await until("Prometheus to be ready", ready, timeout=15)

            started = await http.post(
                f"http://127.0.0.1:{service_port}/otp/start", json={"to": NUMBER}, headers=HEADERS
            )
            assert started.status_code == 201, started.text
            checked = await http.post(
                f"http://127.0.0.1:{service_port}/otp/verify",
                json={"id": started.json()["id"], "code": await next_code(sms, NUMBER)},
                headers=HEADERS,
            )
            assert checked.json()["valid"] is True

            async def query(expr: str) -> list[dict[str, Any]]:
                got = await http.get(f"{prom}/api/v1/query", params={"query": expr})
                got.raise_for_status()
                body = got.json()
                assert body["status"] == "success", body
                result: list[dict[str, Any]] = body["data"]["result"]
                return result

            async def target_up() -> list[dict[str, Any]]:
                return [r for r in await query('up{job="otpservice"}') if r["value"][1] == "1"]

            remaining = max(1.0, deadline - time.monotonic())
            await until("the service's target to be up", target_up, timeout=remaining)

            # A recording rule over a gauge: a value after one scrape and one evaluation.
            remaining = max(1.0, deadline - time.monotonic())
            lane = await until(
                "otp:lane_depth:max", lambda: query("otp:lane_depth:max"), timeout=remaining
            )
            assert float(lane[0]["value"][1]) >= 0

            # A recording rule over the flow's counters: the started verification, by country.
            async def started_in_pl() -> list[dict[str, Any]]:
                found = await query("country:otp_verifications_started:rate30m")
                return [r for r in found if r["metric"].get("country") == "PL"]

            remaining = max(1.0, deadline - time.monotonic())
            rate = await until(
                "country:otp_verifications_started:rate30m{country='PL'}",
                started_in_pl,
                timeout=remaining,
            )
            assert float(rate[0]["value"][1]) >= 0
