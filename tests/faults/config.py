"""The service's configuration in the fault tests: production mode against one fake MessageFlow
endpoint, with two tenants and timings short enough for a test to watch them play out."""

from __future__ import annotations

import os
from pathlib import Path

from tests.integration.conftest import API_KEY, PEPPER, tenant_toml

BRIEF_KEY = "test-key-brief-codes"
"""API key of the `brief` tenant, whose codes live BRIEF_TTL_SECONDS."""
BRIEF_TTL_SECONDS = 61
"""MessageFlow counts validity in whole minutes and the service never sends a code with under a
minute left, so a 61 s code can be sent only in the first second after it was stored."""
WEBHOOK_SECRET = "faults-webhook-secret"
UNLIMITED = {
    "starts_per_ip_per_minute": 10_000_000,
    "sends_per_number_per_hour": 50,
    "sends_per_number_per_day": 100,
}


def write_config(path: Path) -> Path:
    """Two tenants with start limits far above any test load: `acme` (API_KEY, 10-minute codes)
    and `brief` (BRIEF_KEY, 61-second codes)."""
    path.write_text(
        tenant_toml("acme", API_KEY, {"limits": dict(UNLIMITED)})
        + tenant_toml(
            "brief",
            BRIEF_KEY,
            {"code_ttl_seconds": BRIEF_TTL_SECONDS, "limits": dict(UNLIMITED)},
        ),
        encoding="utf-8",
    )
    return path


def service_env(
    *, port: int, redis_url: str, provider_url: str, config: Path, **overrides: str
) -> dict[str, str]:
    """A production configuration, as bench/run.py builds it, with fault-test timings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTP_", "PROMETHEUS_"))}
    env.update(
        OTP_ENV="production",
        OTP_HOST="127.0.0.1",
        OTP_PORT=str(port),
        OTP_REDIS_URL=redis_url,
        OTP_PEPPER="base64:" + PEPPER,
        OTP_CONFIG_FILE=str(config),
        OTP_PROVIDER="messageflow",
        OTP_MESSAGEFLOW_PRIORITY_BASE_URL=provider_url,
        OTP_MESSAGEFLOW_PRIORITY_API_KEY="faults-api-key",
        OTP_MESSAGEFLOW_PRIORITY_APP_KEY="faults-app-key",
        OTP_MESSAGEFLOW_WEBHOOK_SECRET=WEBHOOK_SECRET,
        OTP_PUBLIC_URL=f"http://127.0.0.1:{port}",
        OTP_HASH_THREADS="2",
        OTP_LOG_LEVEL="INFO",
        OTP_REDIS_TIMEOUT_SECONDS="0.5",
        OTP_LANE_VISIBILITY_SECONDS="2",
        OTP_LANE_SWEEP_SECONDS="0.25",
        OTP_SHUTDOWN_DEADLINE_SECONDS="5",
        OTP_PROVIDER_CONNECT_TIMEOUT_SECONDS="1",
        OTP_PROVIDER_READ_TIMEOUT_SECONDS="2",
        OTP_PROVIDER_TOTAL_TIMEOUT_SECONDS="3",
        OTP_PROVIDER_BREAKER_RESET_SECONDS="1",
    )
    env.update(overrides)
    return env
