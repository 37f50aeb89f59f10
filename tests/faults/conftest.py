"""Fault-injection fixtures: per test a fresh Redis server (AOF on, fsync always), fake MessageFlow
endpoints in threads of this process, and `otpservice serve` subprocesses in production mode wired
to them. Everything runs on 127.0.0.1; every process is SIGKILLed (by process group) when the
test ends."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.faults.config import service_env, write_config
from tests.support.binaries import redis_server_binary
from tests.support.fake_provider import FakeProvider, Inbox
from tests.support.ports import free_port
from tests.support.processes import Processes, ServiceProcess
from tests.support.redis_servers import RedisServer


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "faults: kills, stops and starves real service, Redis and provider processes"
        " (select with -m faults, or run tests/faults)",
    )


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[Processes]:
    """Every process the test starts; all stopped when it ends."""
    with Processes(tmp_path) as started:
        yield started


@pytest.fixture
def redis_process(processes: Processes, tmp_path: Path) -> Iterator[RedisServer]:
    """A Redis server whose data survives SIGKILL: restarted with `start()` on the same port
    and directory, it loads its AOF."""
    server = RedisServer(
        redis_server_binary(), directory=tmp_path / "redis", aof=True, processes=processes
    )
    try:
        server.start()
        yield server
    finally:
        server.kill()


@pytest.fixture
def inbox() -> Inbox:
    return Inbox()


@pytest.fixture
def make_provider(inbox: Inbox) -> Iterator[Callable[[str], FakeProvider]]:
    """make_provider(name): a new fake MessageFlow endpoint recording into `inbox`; it posts no
    delivery reports."""
    fakes: list[FakeProvider] = []

    def make(name: str) -> FakeProvider:
        fake = FakeProvider(name=name, inbox=inbox, dlr_status=None)
        fakes.append(fake)
        return fake.start()

    try:
        yield make
    finally:
        for fake in fakes:
            fake.stop()


@pytest.fixture
def launch(
    processes: Processes, redis_process: RedisServer, tmp_path: Path
) -> Iterator[Callable[..., ServiceProcess]]:
    """launch(name, provider, **OTP_overrides): a ready service process on the test's Redis."""
    config = write_config(tmp_path / "otp.toml")
    services: list[ServiceProcess] = []

    def start(name: str, provider: FakeProvider, **overrides: str) -> ServiceProcess:
        env = service_env(
            port=free_port(),
            redis_url=redis_process.url,
            provider_url=provider.url,
            config=config,
            **overrides,
        )
        service = processes.service(f"service-{name}", env)
        services.append(service)
        return service

    try:
        yield start
    finally:
        for service in services:
            service.kill()
        # Shown by pytest only when the test failed.
        for service in services:
            sys.stdout.write(f"--- log of {service.name}\n{service.logs()}\n")
        sys.stdout.write(f"--- redis\n{redis_process.logs()}\n")
