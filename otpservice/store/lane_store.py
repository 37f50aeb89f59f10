"""The priority lane's side of Redis: one stream per shard, one consumer group (`lane`).

send_commit adds each send to its shard's stream and claims it for the calling process in the
same step that stores the code. This module does the rest: the sweep that claims sends their
process abandoned and measures the lane, the renewal of this process' claims, and their
hand-back at shutdown. All of it runs off the request path.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import msgspec
from redis import exceptions as redis_errors
from redis.asyncio import Redis

from otpservice.store.keys import LANE_SHARDS, lane_stream
from otpservice.store.redis_store import ScriptCall, VerificationStore

GROUP = "lane"


class ClaimedSend(msgspec.Struct, frozen=True, kw_only=True):
    """A send claimed from another process, with what is needed to send it again."""

    shard: int
    entry: str
    verification_id: str
    send: int
    expires_ms: int
    sealed_code: bytes
    to: str
    region: str
    locale: str
    app_hash: str
    tenant: str
    now_ms: int


class ShardSweep(msgspec.Struct, frozen=True, kw_only=True):
    depth: int
    oldest_ms: int | None
    """Time the oldest entry still in the stream was added (server clock)."""
    now_ms: int
    expired: int
    stale: int
    claimed: list[ClaimedSend]


def _s(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class LaneStore:
    def __init__(self, store: VerificationStore, consumer: str) -> None:
        self.store = store
        self.consumer = consumer

    async def sweep(
        self,
        *,
        visibility_ms: int,
        batch: int,
        expired_event: bytes,
        retention_ms: int,
        forget_idle_ms: int = 0,
    ) -> list[ShardSweep]:
        """Every shard, in one round trip on one server."""
        args: list[Any] = [
            self.consumer,
            visibility_ms,
            batch,
            expired_event,
            retention_ms,
            forget_idle_ms,
        ]
        calls: list[ScriptCall] = [
            ("lane_sweep", [lane_stream(shard)], args) for shard in range(LANE_SHARDS)
        ]
        raws = await self.store.scripts("lane_sweep", calls)
        return [_shard_sweep(shard, raw) for shard, raw in enumerate(raws)]

    async def keep(self, entries: Mapping[int, Sequence[str]]) -> None:
        """Renew this process' claim on its sends: their idle time starts again."""
        await self._xclaim("lane_keep", entries, idle_ms=0)

    async def hand_back(self, entries: Mapping[int, Sequence[str]], idle_ms: int) -> None:
        """Make these sends look abandoned, so the next sweep of any process claims them."""
        await self._xclaim("lane_hand_back", entries, idle_ms=idle_ms)

    async def _xclaim(
        self, operation: str, entries: Mapping[int, Sequence[str]], *, idle_ms: int
    ) -> None:
        wanted: dict[int, list[Any]] = {shard: list(ids) for shard, ids in entries.items() if ids}
        if not wanted:
            return
        client = self.store.client
        if isinstance(client, Redis):
            async with client.pipeline(transaction=False) as pipe:
                for shard, ids in wanted.items():
                    pipe.xclaim(
                        lane_stream(shard), GROUP, self.consumer, 0, ids, idle=idle_ms, justid=True
                    )
                # A stream that expired meanwhile answers NOGROUP: nothing left to claim there.
                await self.store.call(operation, pipe.execute(raise_on_error=False))
            return
        for shard, ids in wanted.items():
            try:
                await self.store.call(
                    operation,
                    client.xclaim(
                        lane_stream(shard), GROUP, self.consumer, 0, ids, idle=idle_ms, justid=True
                    ),
                )
            except redis_errors.ResponseError:
                continue


def _shard_sweep(shard: int, raw: Sequence[Any]) -> ShardSweep:
    now_ms = int(raw[2])
    oldest = _s(raw[1])
    return ShardSweep(
        depth=int(raw[0]),
        oldest_ms=int(oldest.partition("-")[0]) if oldest else None,
        now_ms=now_ms,
        expired=int(raw[3]),
        stale=int(raw[4]),
        claimed=[
            ClaimedSend(
                shard=shard,
                entry=_s(e[0]),
                verification_id=_s(e[1]),
                send=int(e[2]),
                expires_ms=int(e[3]),
                sealed_code=bytes(e[4]),
                to=_s(e[5]),
                region=_s(e[6]),
                locale=_s(e[7]),
                app_hash=_s(e[8]),
                tenant=_s(e[9]),
                now_ms=now_ms,
            )
            for e in raw[5]
        ],
    )
