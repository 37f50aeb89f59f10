"""The processes a run measures, each started through tests/support/processes.py in its own
session: redis-server, the fake provider (bench/provider.py), the trivial app and
`otpservice serve` in production mode, with the credentials and tenant the load generator uses."""

from __future__ import annotations

import base64
import hashlib
import secrets
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import redis

from harness import BENCH, log
from harness.machine import group_members
from tests.support.ports import free_port
from tests.support.processes import Processes
from tests.support.redis_servers import RedisServer, find_server_binary

API_KEY = "bench_" + secrets.token_urlsafe(24)
WEBHOOK_SECRET = secrets.token_urlsafe(24)
PEPPER = "base64:" + base64.b64encode(secrets.token_bytes(32)).decode()


@dataclass(frozen=True)
class ServiceOptions:
    """How the service is configured: the command line's `--workers`, `--hash-threads`,
    `--profile`. `hash_threads` None leaves OTP_HASH_THREADS unset (the service's default)."""

    workers: int
    hash_threads: int | None
    profile: str


FRAUD_BUDGETS = """
# The fraud guard runs as in production (enforce), its budgets raised like the limits above:
# the benchmark's numbers are synthetic, all in a few +48 60x prefixes, many never verified.
""" + "".join(
    f"[policy.fraud.{scope}]\nfloor_day = 1000000000\nfloor_hour = 1000000000\n"
    for scope in ("country", "prefix", "ip")
)


def write_tenant_file(path: Path) -> None:
    """The benchmark tenant, its limits raised so that the load is never rate-limited (nor
    refused by the fraud guard)."""
    digest = hashlib.sha256(API_KEY.encode()).hexdigest()
    path.write_text(
        f"""# Benchmark tenant: limits raised so that the load is never rate-limited.
[policy.limits]
starts_per_ip_per_minute = 10000000
sends_per_number_per_hour = 5
sends_per_number_per_day = 10
{FRAUD_BUDGETS}
[[tenants]]
name = "bench"
api_key_sha256 = ["{digest}"]
sender = "Bench"
app_name = "Bench"
default_locale = "en"
""",
        encoding="utf-8",
    )


def service_env(
    options: ServiceOptions,
    environ: dict[str, str],
    *,
    port: int,
    redis_url: str,
    provider_url: str,
    config: Path,
    metrics_dir: Path,
    server: str,
) -> dict[str, str]:
    """The service's environment as in production, every OTP_ variable of `environ` dropped."""
    env = {k: v for k, v in environ.items() if not k.startswith("OTP_")}
    env.update(
        OTP_ENV="production",
        OTP_HOST="127.0.0.1",
        OTP_PORT=str(port),
        OTP_REDIS_URL=redis_url,
        OTP_PEPPER=PEPPER,
        OTP_CONFIG_FILE=str(config),
        OTP_PROVIDER="messageflow",
        OTP_MESSAGEFLOW_PRIORITY_BASE_URL=provider_url,
        OTP_MESSAGEFLOW_PRIORITY_API_KEY="bench-api-key",
        OTP_MESSAGEFLOW_PRIORITY_APP_KEY="bench-app-key",
        OTP_MESSAGEFLOW_WEBHOOK_SECRET=WEBHOOK_SECRET,
        OTP_PUBLIC_URL=f"http://127.0.0.1:{port}",
        OTP_ARGON2_PROFILE=options.profile,
        OTP_WORKERS=str(options.workers),
        OTP_SERVER=server,
        OTP_LOG_LEVEL="WARNING",
    )
    if options.hash_threads is not None:
        env["OTP_HASH_THREADS"] = str(options.hash_threads)
    if options.workers > 1:
        env["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
    return env


def start_redis(procs: Processes) -> RedisServer:
    """A real redis-server on a free port: `noeviction`, no persistence."""
    binary = find_server_binary()
    if binary is None:
        raise RuntimeError("no redis-server binary (apt-get install redis-server)")
    server = RedisServer(binary, processes=procs)
    server.start()
    return server


def redis_version(server: RedisServer) -> str:
    with redis.Redis(port=server.port) as client:
        return f"{Path(server.binary).name} {client.info('server')['redis_version']}"


def start_provider(procs: Processes) -> str:
    """The fake MessageFlow provider as process `fake_provider`; returns its URL."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    argv = [sys.executable, str(BENCH / "provider.py"), "--port", str(port)]
    argv.append(f"--webhook-secret={WEBHOOK_SECRET}")
    procs.start("fake_provider", argv, ready_url=f"{url}/stats")
    return url


def start_trivial(procs: Processes, name: str, server: str, workers: int) -> str:
    """The trivial app under `server`, with the service's settings; returns its URL."""
    port = free_port()
    argv = [sys.executable, str(BENCH / "trivial_app.py"), "--port", str(port)]
    argv += ["--workers", str(workers), "--server", server]
    procs.start(name, argv, ready_url=f"http://127.0.0.1:{port}/")
    return f"http://127.0.0.1:{port}"


@dataclass(frozen=True)
class Service:
    name: str
    url: str
    env: dict[str, str]
    processes: int
    """Processes of its group once up: the server's supervisor and its workers."""


def start_service(
    procs: Processes,
    options: ServiceOptions,
    environ: dict[str, str],
    *,
    name: str,
    server: str,
    scratch: Path,
    redis_url: str,
    provider_url: str,
) -> Service:
    """`otpservice serve` as in production, once its /readyz answers."""
    config = scratch / "bench.toml"
    if not config.exists():
        write_tenant_file(config)
    port = free_port()
    metrics_dir = scratch / f"metrics-{server}"  # emptied by each service at start
    metrics_dir.mkdir(exist_ok=True)
    env = service_env(
        options,
        environ,
        port=port,
        redis_url=redis_url,
        provider_url=provider_url,
        config=config,
        metrics_dir=metrics_dir,
        server=server,
    )
    procs.service(name, env, timeout=60)
    time.sleep(0.5)
    count = len(group_members(procs.started[name].pid))
    url = f"http://127.0.0.1:{port}"
    log(f"service under {server} up on {url}: {count} process(es)")
    return Service(name=name, url=url, env=env, processes=count)


def wait_provider_idle(provider_url: str, timeout: float = 30.0) -> None:
    """Until the fake provider has no DLR left to post and no SMS arrived for 0.3 s."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        stats = httpx.get(f"{provider_url}/stats", timeout=5).json()
        now = (stats.get("sms", 0), stats.get("dlr_queue", 0))
        if now[1] == 0 and now == last:
            return
        last = now
        time.sleep(0.3)
    log("warning: the provider was still busy after the quiet wait")


def set_provider_dlr(provider_url: str, *, on: bool) -> None:
    httpx.post(f"{provider_url}/control", json={"dlr": on}, timeout=5).raise_for_status()


def provider_stats(provider_url: str) -> dict[str, int]:
    stats: dict[str, int] = httpx.get(f"{provider_url}/stats", timeout=5).json()
    return stats
