"""Fixtures of the client tests: the client imported from clients/python/src, and one
development-mode service process for the session.

The client is imported from its source tree, not from an installed copy, so the README's test
command (`pip install -e '.[test]'` then `pytest`) tests this checkout's client without a
second install; httpx and msgspec come with the service. Its webhook dependency
(standardwebhooks) and the OpenAPI generator are installed on first use into a directory of the
session, never into the environment (support.py).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.clients.support import CLIENT_SRC, LiveService, new_phone_number, start_live_service
from tests.support.processes import Processes

if str(CLIENT_SRC) not in sys.path:
    sys.path.insert(0, str(CLIENT_SRC))


@pytest.fixture(scope="session")
def live_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveService]:
    workdir = tmp_path_factory.mktemp("live-service")
    with Processes(workdir) as processes:
        yield start_live_service(processes, workdir)


@pytest.fixture(scope="session")
def python_packages(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the session installs the Python packages it needs and the environment lacks."""
    return tmp_path_factory.mktemp("python-packages")


@pytest.fixture
def phone() -> str:
    return new_phone_number()
