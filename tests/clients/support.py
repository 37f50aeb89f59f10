"""What the client tests share: Python packages the service's `.[test]` does not bring
(installed into a directory of the session on first use, else the test is skipped naming the
command), a development-mode service process, and the sandbox's printed SMS read back as codes."""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import itertools
import os
import re
import secrets
import shlex
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from otpservice.errors import ConfigError
from otpservice.settings import load_settings
from tests.support.binaries import REQUIRE, binaries_required
from tests.support.ports import free_port
from tests.support.processes import REPO, Processes, ServiceProcess

CLIENT_PROJECT = REPO / "clients" / "python"
CLIENT_SRC = CLIENT_PROJECT / "src"
GENERATOR_REQUIREMENT = "openapi-python-client>=0.29,<0.30"
"""The generator CI installs (.ci/run names the same range): its output changes between minor
versions, and test_generated_client.py reads that output."""
RESEND_COOLDOWN_SECONDS = 3
"""The live service's first resend cooldown: long enough to be refused at once, short enough to
wait out in a test."""


def client_requirement(distribution: str) -> str:
    """`distribution`'s requirement as clients/python/pyproject.toml states it."""
    project = tomllib.loads((CLIENT_PROJECT / "pyproject.toml").read_text(encoding="utf-8"))
    for requirement in project["project"]["dependencies"]:
        if re.match(rf"{re.escape(distribution)}\b", requirement):
            return str(requirement)
    raise LookupError(f"{distribution} is not a dependency of otpservice-client")


def require_python_package(module: str, requirement: str, target: Path) -> Path | None:
    """None when `module` is importable here. Else pip installs `requirement` into `target`
    and returns it, for sys.path or a subprocess's PYTHONPATH: not into this environment, so
    the rest of the session (and the next) runs with the packages it started with. The root
    `pip install -e '.[test]'` brings neither the client's webhook dependency nor the generator.
    If pip cannot (no network), the test is skipped naming the command, or fails under
    OTP_TEST_REQUIRE_BINARIES=1."""
    if importlib.util.find_spec(module) is not None:
        return None
    if (target / module).is_dir():
        return target  # installed by an earlier test of this session
    command = [sys.executable, "-m", "pip", "install", "--quiet", "--target", str(target)]
    command.append(requirement)
    result = subprocess.run(  # noqa: PLW1510 - the outcome is checked just below
        [*command, "--disable-pip-version-check"], capture_output=True, text=True, timeout=600
    )
    if result.returncode == 0 and (target / module).is_dir():
        return target
    last_line = (result.stderr.strip().splitlines() or ["no output"])[-1]
    install = shlex.join([sys.executable, "-m", "pip", "install", requirement])
    reason = f"{requirement} is missing and pip could not fetch it ({last_line}): run `{install}`"
    if binaries_required():
        pytest.fail(f"{reason} ({REQUIRE}=1 turns this skip into a failure)", pytrace=False)
    pytest.skip(reason)


@contextlib.contextmanager
def importable(module: str, requirement: str, target: Path) -> Iterator[None]:
    """`module` importable in this process while the block runs (see require_python_package)."""
    site = require_python_package(module, requirement, target)
    if site is None:
        yield
        return
    sys.path.append(str(site))  # after the environment's own packages, which win
    importlib.invalidate_caches()
    try:
        yield
    finally:
        sys.path.remove(str(site))


@dataclass(frozen=True)
class LiveService:
    """`otpservice serve` in development mode: embedded store, sandbox SMS echoed to stdout."""

    process: ServiceProcess
    api_key: str

    @property
    def url(self) -> str:
        return self.process.url

    def sms_texts(self, to: str) -> list[str]:
        """Every SMS text the sandbox printed for `to`, oldest first."""
        log = self.process.log_path.read_text(encoding="utf-8", errors="replace")
        return [m["text"] for m in _SANDBOX_LINE.finditer(log) if m["to"] == to]

    def code(self, to: str, *, nth: int = 1, timeout: float = 10.0) -> str:
        """The code in the `nth` SMS sent to `to`, waiting until the sandbox printed it."""
        deadline = time.monotonic() + timeout
        while len(texts := self.sms_texts(to)) < nth:
            if not self.process.running():
                raise RuntimeError(f"the service exited:\n{self.process.logs()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"no SMS number {nth} to {to} within {timeout} s")
            time.sleep(0.05)
        found = _CODE.search(texts[nth - 1])
        if found is None:
            raise RuntimeError(f"SMS number {nth} to {to} holds no 6-digit code")
        return found.group(0)


_SANDBOX_LINE = re.compile(
    r"^\[sandbox SMS to (?P<to>\+\d+) from [^\]]*\] (?P<text>.*)$", re.MULTILINE
)
_CODE = re.compile(r"(?<!\d)\d{6}(?!\d)")
_numbers = itertools.count(1)


def new_phone_number() -> str:
    """A Polish mobile number no other test of the session uses (each number has its own
    send limits)."""
    return f"+48601{next(_numbers):06d}"


def write_policy(path: Path) -> Path:
    """The live service's policy file: development mode applies [policy] to its one tenant.

    The fraud guard is off: its budgets (a few unverified sends per country and hour) would
    refuse these tests' codes, most of which are never entered. A service without the guard
    refuses the [policy.fraud] table; then the file leaves it out (checked with the service's
    own loader, before the process starts)."""
    policy = f"[policy]\nresend_cooldown_seconds = {RESEND_COOLDOWN_SECONDS}\n"
    for text in (policy + '\n[policy.fraud]\nmode = "off"\n', policy):
        path.write_text(text, encoding="utf-8")
        try:
            load_settings({"OTP_CONFIG_FILE": str(path), "OTP_DEV_API_KEY": "check"})
        except ConfigError:
            continue
        return path
    raise RuntimeError(f"the service refuses the tests' policy file:\n{text}")


def start_live_service(processes: Processes, workdir: Path) -> LiveService:
    """A ready development-mode service on a free port, with a fixed API key."""
    api_key = "dev_" + secrets.token_urlsafe(16)
    policy = write_policy(workdir / "policy.toml")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTP_", "PROMETHEUS_"))}
    env.update(
        OTP_ENV="development",
        OTP_HOST="127.0.0.1",
        OTP_PORT=str(free_port()),
        OTP_DEV_API_KEY=api_key,
        OTP_SANDBOX_ECHO="true",
        OTP_ARGON2_PROFILE="test",
        OTP_CONFIG_FILE=str(policy),
        # Every SMS delivered: an undelivered report would lift the resend cooldown.
        OTP_SANDBOX_OUTCOMES="delivered=100",
        OTP_SANDBOX_DLR_DELAY_SECONDS="0.2",
        OTP_HASH_THREADS="2",
        PYTHONUNBUFFERED="1",
    )
    return LiveService(processes.service("otpservice-dev", env), api_key)
