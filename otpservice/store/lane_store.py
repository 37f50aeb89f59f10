"""The priority lane's side of Redis: one stream per shard, one consumer group (schema.LANE_GROUP).

send_commit adds each send to its shard's stream and claims it for the calling process in the
same step that stores the code. This module does the rest, off the request path: the sweep that
claims sends their process abandoned (one pipelined call over every shard) and settles each of
them (a second pipelined call, only when something was claimed), the renewal of this process'
claims, and their hand-back at shutdown.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from redis import exceptions as redis_errors

from otpservice.domain.delivery import DeliveryStatus
from otpservice.ids import VerificationRef, parse_ref
from otpservice.lane import ClaimedSend, ShardSweep
from otpservice.store import keys
from otpservice.store.client import ScriptCall, StoreClient
from otpservice.store.events import event_tenant_list
from otpservice.store.replies import ClaimedEntry, ResumeReply, SweepReply, decode_reply
from otpservice.store.schema import LANE_GROUP, event_fragment
from otpservice.usecases.ports import DeliveryEvent


class _Claim(NamedTuple):
    shard: int
    entry: ClaimedEntry
    now_ms: int


class RedisLane:
    def __init__(
        self,
        store: StoreClient,
        consumer: str,
        retention_ms: int,
        event_tenants: Sequence[str] = (),
    ) -> None:
        self.store = store
        self.consumer = consumer
        self._retention_ms = retention_ms
        self._event_tenants = event_tenant_list(event_tenants)

    async def sweep(
        self, *, visibility_ms: int, batch: int, provider: str, forget_idle_ms: int = 0
    ) -> list[ShardSweep]:
        """Every shard in one round trip; one more for the sends claimed, if any."""
        args = [self.consumer, visibility_ms, batch, forget_idle_ms]
        calls: list[ScriptCall] = [
            ("lane_sweep", [keys.lane_stream(shard)], args) for shard in range(keys.SHARDS)
        ]
        raws = await self.store.scripts("lane_sweep", calls)
        replies = [decode_reply(raw, SweepReply) for raw in raws]
        claimed = [
            _Claim(shard, entry, reply.now_ms)
            for shard, reply in enumerate(replies)
            for entry in reply.claimed
        ]
        settled = await self._settle(claimed, provider) if claimed else []
        sweeps = []
        for shard, reply in enumerate(replies):
            oldest = reply.oldest.partition("-")[0]
            mine = [v for c, v in zip(claimed, settled, strict=True) if c.shard == shard]
            sweeps.append(
                ShardSweep(
                    depth=reply.depth,
                    oldest_ms=int(oldest) if oldest else None,
                    now_ms=reply.now_ms,
                    expired=mine.count("expired"),
                    stale=mine.count("stale"),
                    claimed=[v for v in mine if isinstance(v, ClaimedSend)],
                )
            )
        return sweeps

    async def _settle(self, claimed: list[_Claim], provider: str) -> list[ClaimedSend | str]:
        """Each claimed entry: 'stale', 'expired', or the send to submit again."""
        expired_event = event_fragment(
            DeliveryEvent(
                status=DeliveryStatus.FAILED.value,
                at_ms=0,
                send=0,
                provider=provider,
                provider_status="expired_before_send",
            )
        )
        out: list[ClaimedSend | str] = ["stale"] * len(claimed)
        calls: list[ScriptCall] = []
        resumed: list[tuple[int, VerificationRef]] = []
        for index, claim in enumerate(claimed):
            ref = parse_ref(claim.entry.ref)
            if ref is None:
                # Not one of ours: nothing to resume, only to acknowledge.
                await self._drop(claim)
                continue
            found = keys.VerificationKeys(ref)
            resumed.append((index, ref))
            calls.append(
                (
                    "lane_resume",
                    [
                        found.current,
                        found.archived,
                        found.events,
                        found.lane,
                        *keys.shard_outbox(found.shard),
                    ],
                    [
                        ref.rand,
                        claim.entry.send,
                        claim.entry.expires_ms,
                        claim.entry.entry,
                        expired_event,
                        self._retention_ms,
                        ref.text,
                        self._event_tenants,
                    ],
                )
            )
        raws = await self.store.scripts("lane_resume", calls) if calls else []
        for (index, ref), raw in zip(resumed, raws, strict=True):
            claim = claimed[index]
            reply = decode_reply(raw, ResumeReply)
            out[index] = reply.verdict
            if reply.verdict == "send":
                out[index] = ClaimedSend(
                    shard=claim.shard,
                    entry=claim.entry.entry,
                    ref=ref,
                    send=claim.entry.send,
                    expires_ms=claim.entry.expires_ms,
                    sealed=claim.entry.sealed,
                    to=reply.to,
                    region=reply.region,
                    locale=reply.locale,
                    app_hash=reply.app_hash,
                    tenant=reply.tenant,
                    now_ms=claim.now_ms,
                )
        return out

    async def _drop(self, claim: _Claim) -> None:
        stream = keys.lane_stream(claim.shard)
        redis = self.store.redis
        await self.store.call("lane_drop", redis.xack(stream, LANE_GROUP, claim.entry.entry))
        await self.store.call("lane_drop", redis.xdel(stream, claim.entry.entry))

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
        redis = self.store.redis
        if self.store.single_server:
            async with redis.pipeline(transaction=False) as pipe:
                for shard, ids in wanted.items():
                    pipe.xclaim(
                        keys.lane_stream(shard), LANE_GROUP, self.consumer, 0, ids,
                        idle=idle_ms, justid=True,
                    )  # fmt: skip
                # A stream that expired meanwhile answers NOGROUP: nothing left to claim there.
                await self.store.call(operation, pipe.execute(raise_on_error=False))
            return
        for shard, ids in wanted.items():
            try:
                await self.store.call(
                    operation,
                    redis.xclaim(
                        keys.lane_stream(shard), LANE_GROUP, self.consumer, 0, ids,
                        idle=idle_ms, justid=True,
                    ),
                )  # fmt: skip
            except redis_errors.ResponseError:
                continue
