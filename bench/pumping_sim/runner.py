"""One simulator run on a Redis given by URL: the simulation, then the memory figures."""

from __future__ import annotations

import secrets
import time
from datetime import UTC, datetime

import msgspec

from otpservice.domain.fraud import FraudPolicy
from otpservice.store.client import StoreClient
from otpservice.store.connection import connect

from .engine import Simulation
from .memory import measure
from .results import RunResult, Scenario
from .traffic import COUNTRIES

TIMEOUT_S = 10.0


async def simulate(url: str, scenario: Scenario) -> RunResult:
    """Run `scenario` against the Redis at `url` (any topology the service supports). Its
    tenants are new names, so a shared server's other data is left alone."""
    began = time.perf_counter()
    client = connect(url, TIMEOUT_S)
    try:
        store = StoreClient(client, TIMEOUT_S)
        simulation = Simulation(store, scenario, secrets.token_hex(3))
        shapes = await simulation.run()
        memory = await measure(client, simulation.runs[0].tenant.name, simulation.end_ms - 1)
        info = await client.info("server")
    finally:
        await client.aclose()
    return RunResult(
        scenario=scenario,
        started_at=datetime.now(UTC).isoformat(timespec="seconds"),
        seconds=round(time.perf_counter() - began, 1),
        redis_version=str(_first(info).get("redis_version", "?")),
        policy=msgspec.to_builtins(FraudPolicy()),
        legit_volume={c.region: round(c.per_day * scenario.scale) for c in COUNTRIES},
        sessions=len(simulation.sessions),
        shapes=shapes,
        memory=memory,
    )


def _first(info: dict[str, object]) -> dict[str, object]:
    """INFO of one server; a cluster client answers per node."""
    if "redis_version" in info:
        return info
    for value in info.values():
        if isinstance(value, dict):
            return value
    return {}
