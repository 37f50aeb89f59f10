"""The real processes of the fault tests: redis-server and `otpservice serve` in production mode.

Each runs in its own session (process group) so that a test can SIGSTOP, SIGKILL or SIGTERM it
and the fixtures can always SIGKILL whatever is left. Every wait is bounded.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.integration.conftest import API_KEY, PEPPER, tenant_toml
from tests.redis_server import free_port

REPO = Path(__file__).resolve().parents[2]
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


def _kill_group(process: subprocess.Popen[bytes], sig: int = signal.SIGKILL) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, sig)


def _reap(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL the group and wait for the leader; SIGCONT first in case it was stopped."""
    _kill_group(process, signal.SIGCONT)
    _kill_group(process)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=10)


def _answers_ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2) as sock:
            sock.settimeout(0.5)
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def _tail(path: Path, size: int = 4000) -> str:
    try:
        return path.read_text(errors="replace")[-size:]
    except OSError:
        return ""


class RedisProcess:
    """A redis-server on 127.0.0.1 with AOF on (fsync always), so a SIGKILLed server restarted
    on the same port and directory comes back with its data."""

    def __init__(self, binary: str, directory: Path) -> None:
        self.binary = binary
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> None:
        assert self.process is None or self.process.poll() is not None, "already running"
        self.starts += 1
        log = (self.dir / f"redis-{self.starts}.log").open("wb")
        self.process = subprocess.Popen(
            [
                self.binary,
                "--port", str(self.port),
                "--bind", "127.0.0.1",
                "--dir", str(self.dir),
                "--save", "",
                "--appendonly", "yes",
                "--appendfsync", "always",
                "--maxmemory-policy", "noeviction",
                "--daemonize", "no",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )  # fmt: skip
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"redis-server exited at start:\n{self.logs()}")
            if _answers_ping(self.port):
                return
            time.sleep(0.05)
        raise RuntimeError(f"redis-server did not answer on {self.port} in {timeout} s")

    def pause(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGSTOP)

    def resume(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGCONT)

    def kill(self) -> None:
        assert self.process is not None
        _reap(self.process)

    def logs(self) -> str:
        return "\n".join(_tail(p) for p in sorted(self.dir.glob("redis-*.log")))

    def close(self) -> None:
        if self.process is not None:
            _reap(self.process)


class ServiceProcess:
    """`python -m otpservice serve` as in production, talking to one fake provider."""

    def __init__(self, name: str, env: dict[str, str], log_path: Path) -> None:
        self.name = name
        self.env = env
        self.port = int(env["OTP_PORT"])
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self, timeout: float = 30.0) -> None:
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "otpservice", "serve"],
            env=self.env,
            cwd=REPO,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"service {self.name} exited at start:\n{self.logs()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"service {self.name} not ready in {timeout} s:\n{self.logs()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200:
                    return
            time.sleep(0.1)

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill9(self) -> None:
        """SIGKILL the whole group at once and reap it: nothing of the process runs on."""
        assert self.process is not None
        _reap(self.process)
        assert self.process.poll() is not None, f"service {self.name} survived SIGKILL"

    def terminate(self) -> None:
        """SIGTERM to the server process, as an orchestrator stopping a pod sends it."""
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGTERM)

    def logs(self) -> str:
        return _tail(self.log_path)

    def close(self) -> None:
        if self.process is not None:
            _reap(self.process)


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
