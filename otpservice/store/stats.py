"""Reads the support console's statistics: the counters the scripts keep per shard and period
(keys.stats_slot, keys.stats_hour; fields `<tenant>|<counter>|<detail>`), summed over the 64
shards in one pipelined read. For the console only: never on a request path."""

from __future__ import annotations

from collections import Counter
from typing import Any

from otpservice.store import keys
from otpservice.store.client import StoreClient
from otpservice.usecases.support import StatsPeriods


class RedisStats:
    def __init__(self, store: StoreClient) -> None:
        self.store = store

    async def periods(self, tenant: str, now_ms: int) -> StatsPeriods:
        slots = [now_ms // keys.STATS_SLOT_MS - back for back in range(keys.STATS_SLOTS_READ)]
        hours = [now_ms // keys.STATS_HOUR_MS - back for back in range(keys.STATS_HOURS_READ)]
        slots.reverse()
        hours.reverse()
        names = [
            *(keys.stats_slot(shard, slot) for slot in slots for shard in range(keys.SHARDS)),
            *(keys.stats_hour(shard, hour) for hour in hours for shard in range(keys.SHARDS)),
        ]

        async def read() -> list[Any]:
            async with self.store.redis.pipeline(transaction=False) as pipe:
                for name in names:
                    pipe.hgetall(name)
                return list(await pipe.execute())

        replies = await self.store.call("console_stats", read())
        prefix = f"{tenant}|".encode()
        sums: list[Counter[str]] = []
        for at in range(0, len(replies), keys.SHARDS):
            total: Counter[str] = Counter()
            for reply in replies[at : at + keys.SHARDS]:
                for field, value in (reply or {}).items():
                    if field.startswith(prefix) and value.isdigit():
                        total[field[len(prefix) :].decode(errors="replace")] += int(value)
            sums.append(total)
        return StatsPeriods(
            slots=tuple((slot * keys.STATS_SLOT_MS, dict(sums[i])) for i, slot in enumerate(slots)),
            hours=tuple(
                (hour * keys.STATS_HOUR_MS, dict(sums[len(slots) + i]))
                for i, hour in enumerate(hours)
            ),
        )
