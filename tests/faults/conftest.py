"""Fault-injection fixtures: per test a fresh redis-server (AOF on), fake MessageFlow endpoints in
threads of this process, and `otpservice serve` subprocesses in production mode wired to them.
Everything runs on 127.0.0.1 and is SIGKILLed (by process group) when the test ends."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.faults.processes import RedisProcess, ServiceProcess, service_env, write_config
from tests.faults.provider import FakeMessageFlow, Inbox
from tests.redis_server import MISSING, find_server_binary, free_port


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "faults: kills, stops and starves real service, Redis and provider processes"
        " (select with -m faults, or run tests/faults)",
    )


@pytest.fixture
def redis_process(tmp_path: Path) -> Iterator[RedisProcess]:
    binary = find_server_binary()
    if binary is None:
        pytest.exit(MISSING, returncode=3)
    server = RedisProcess(binary, tmp_path / "redis")
    try:
        server.start()
        yield server
    finally:
        server.close()


@pytest.fixture
def inbox() -> Inbox:
    return Inbox()


@pytest.fixture
def make_provider(inbox: Inbox) -> Iterator[Callable[[str], FakeMessageFlow]]:
    """make_provider(name): a new fake MessageFlow endpoint recording into `inbox`."""
    fakes: list[FakeMessageFlow] = []

    def make(name: str) -> FakeMessageFlow:
        fake = FakeMessageFlow(name, inbox)
        fakes.append(fake)
        return fake

    try:
        yield make
    finally:
        for fake in fakes:
            fake.close()


@pytest.fixture
def launch(redis_process: RedisProcess, tmp_path: Path) -> Iterator[Callable[..., ServiceProcess]]:
    """launch(name, provider, **OTP_overrides): a ready service process on the test's Redis."""
    config = write_config(tmp_path / "otp.toml")
    services: list[ServiceProcess] = []

    def start(name: str, provider: FakeMessageFlow, **overrides: str) -> ServiceProcess:
        port = free_port()
        env = service_env(
            port=port,
            redis_url=redis_process.url,
            provider_url=provider.url,
            config=config,
            **overrides,
        )
        service = ServiceProcess(name, env, tmp_path / f"service-{name}.log")
        services.append(service)
        service.start()
        return service

    try:
        yield start
    finally:
        for service in services:
            service.close()
        # Shown by pytest only when the test failed.
        for service in services:
            sys.stdout.write(f"--- log of service {service.name}\n{service.logs()}\n")
        sys.stdout.write(f"--- redis\n{redis_process.logs()}\n")
