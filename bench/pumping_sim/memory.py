"""What the guard's counters of one tenant cost in Redis: MEMORY USAGE of its day and hour
hashes, over the scopes (countries, prefixes, IPs) they count."""

from __future__ import annotations

from typing import Any

from otpservice.store.keys import FRAUD_DAYS, FRAUD_HOURS, FraudKeys

from .results import MemoryFigures

_KINDS = {"c": "countries", "p": "prefixes", "i": "ips"}


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


async def _usage(client: Any, key: str) -> int:
    # SAMPLES 0: every field is measured, not an estimate from a sample of five.
    found = await client.memory_usage(key, samples=0)
    return int(found or 0)


def _scopes(fields: list[str]) -> set[str]:
    """Counted scopes: the fields s:<scope>, a:<scope>, f:<scope> (c:PL, p:+486012, i:<tag>)."""
    return {f[2:] for f in fields if f[:2] in {"s:", "a:", "f:"}}


async def measure(client: Any, tenant: str, now_ms: int) -> MemoryFigures:
    """`client`: a redis-py asyncio client of the server holding the tenant's slot."""
    keys = FraudKeys(tenant)
    day_bytes = hour_bytes = day_keys = hour_keys = scope_days = 0
    scopes: set[str] = set()
    for back in range(FRAUD_DAYS):
        key = keys.day(now_ms, back)
        if not await client.exists(key):
            continue
        day_keys += 1
        day_bytes += await _usage(client, key)
        found = _scopes([_text(f) for f in await client.hkeys(key)])
        scope_days += len(found)
        scopes |= found
    for back in range(FRAUD_HOURS):
        key = keys.hour(now_ms, back)
        if await client.exists(key):
            hour_keys += 1
            hour_bytes += await _usage(client, key)
    counts = dict.fromkeys(_KINDS.values(), 0)
    for scope in scopes:
        counts[_KINDS[scope[0]]] += 1
    return MemoryFigures(
        day_hash_bytes=day_bytes,
        hour_hash_bytes=hour_bytes,
        day_keys=day_keys,
        hour_keys=hour_keys,
        scopes=counts,
        scope_days=scope_days,
        bytes_per_scope=(day_bytes + hour_bytes) / len(scopes) if scopes else 0.0,
        bytes_per_scope_day=day_bytes / scope_days if scope_days else 0.0,
        blocks_bytes=await _usage(client, keys.blocks),
    )
