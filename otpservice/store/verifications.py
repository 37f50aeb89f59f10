"""Verifications in Redis: the send, check, read/cancel and delivery repositories of
usecases/ports.py, one Lua script per atomic step, every key handed to the script in KEYS."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from typing import Any

import msgspec

from otpservice.domain.delivery import DeliveryStatus
from otpservice.ids import VerificationRef
from otpservice.store import keys
from otpservice.store.client import ScriptCall, StoreClient
from otpservice.store.events import event_tenant_list
from otpservice.store.fraud import check_call, decode_verdict
from otpservice.store.replies import (
    CheckBeginReply,
    CheckFinishReply,
    DeliveryReply,
    ReadReply,
    SendCheckReply,
    SendCommitReply,
    decode_reply,
)
from otpservice.store.schema import decode_events, decode_record, event_fragment
from otpservice.usecases.ports import (
    CheckBegun,
    CheckFinished,
    DeliveryEvent,
    DeliveryUpdate,
    FraudQuery,
    IpLimit,
    NewCode,
    SendCommitted,
    SendLimits,
    SendPrecheck,
    SendRequest,
    Snapshot,
)

_request_encoder = msgspec.json.Encoder()


def _wall_ms() -> int:
    """This process's clock: it picks the period of the console's statistics hashes."""
    return time.time_ns() // 1_000_000


class RedisVerifications:
    """`consumer`: this process' name in the lane's group; a stored send is claimed for it.
    `event_tenants`: the tenants with event webhooks: the scripts queue their events."""

    def __init__(
        self, store: StoreClient, consumer: str, event_tenants: Sequence[str] = ()
    ) -> None:
        self.store = store
        self.consumer = consumer
        self.event_tenants = event_tenant_list(event_tenants)

    # --- sending --------------------------------------------------------------------------

    async def send_precheck(
        self,
        *,
        tenant: str,
        tag: str,
        rand: str | None,
        limits: SendLimits,
        ip: IpLimit | None,
        fraud: FraudQuery | None = None,
    ) -> SendPrecheck:
        """The number's pre-check, the IP bucket and the fraud guard's decision, in one round
        trip on one server (pipelined: their keys live in three different slots); on a Cluster
        the three calls go at once, to the nodes that hold them."""
        number = keys.NumberKeys(tag)
        calls: list[ScriptCall] = []
        if ip is not None:
            calls.append(("rate_take", [keys.ip_bucket(ip.ip_tag)], [ip.limit, ip.period_ms]))
        if fraud is not None:
            calls.append(check_call(fraud, self.event_tenants))
        calls.append(
            (
                "send_check",
                [number.current, number.send_buckets],
                [tenant, rand or "", limits.sends_per_hour, limits.sends_per_day],
            )
        )
        raws = await self.store.scripts("send_check", calls)
        reply = decode_reply(raws[-1], SendCheckReply)
        return SendPrecheck(
            verdict=reply.verdict,
            wait_ms=reply.wait_ms,
            rand=reply.rand,
            open=reply.open,
            salt=reply.salt,
            ip_wait_ms=int(raws[0]) if ip is not None else 0,
            fraud=decode_verdict(raws[-2]) if fraud is not None else None,
        )

    async def send_commit(self, request: SendRequest, code: NewCode) -> SendCommitted:
        number = keys.NumberKeys(request.tag)
        target = request.seen_rand if request.seen_open else request.new_rand
        call_keys = [
            number.current,
            number.send_buckets,
            number.lane,
            keys.VerificationKeys(VerificationRef(request.tag, target)).events,
            keys.VerificationKeys(VerificationRef(request.tag, request.seen_rand)).archived,
            keys.expiry_schedule(number.shard),
            *keys.stats_keys(number.shard, _wall_ms()),
        ]
        queued = DeliveryEvent(
            status=DeliveryStatus.QUEUED.value, at_ms=0, send=0, provider=request.provider
        )
        flags = [
            event_fragment(
                DeliveryEvent(
                    status="flagged", at_ms=0, send=0, provider_status=rule, detail=detail
                )
            ).decode()
            for rule, detail in request.flagged
        ]
        payload = {**msgspec.structs.asdict(request), "flag_events": flags}
        raw = await self.store.script(
            "send_commit",
            call_keys,
            [
                _request_encoder.encode(payload),
                code.salt,
                code.digest,
                code.sealed,
                event_fragment(queued),
                self.consumer,
                self.event_tenants,
            ],
        )
        reply = decode_reply(raw, SendCommitReply)
        if reply.verdict != "ok":
            return SendCommitted(verdict=reply.verdict, wait_ms=reply.wait_ms)
        record = decode_record(request.tag, reply.record)
        return SendCommitted(
            verdict="ok",
            created=reply.created,
            now_ms=reply.now_ms,
            record=record,
            queued=msgspec.structs.replace(queued, at_ms=reply.now_ms, send=record.sends),
            lane_shard=number.shard,
            lane_entry=reply.entry,
        )

    # --- checking -------------------------------------------------------------------------

    async def check_begin(
        self,
        *,
        tenant: str,
        tag: str,
        rand: str | None,
        failed_limit: int,
        failed_window_ms: int,
    ) -> CheckBegun:
        number = keys.NumberKeys(tag)
        raw = await self.store.script(
            "check_begin",
            [number.current, number.failed_checks],
            [tenant, rand or "", failed_limit, failed_window_ms],
        )
        reply = decode_reply(raw, CheckBeginReply)
        digests = (
            (reply.digest, reply.previous_digest) if reply.previous_digest else (reply.digest,)
        )
        return CheckBegun(
            verdict=reply.verdict,
            wait_ms=reply.wait_ms,
            rand=reply.rand,
            salt=reply.salt,
            digests=tuple(d for d in digests if d) if reply.verdict == "ok" else (),
            sends=reply.sends,
        )

    async def check_finish(self, ref: VerificationRef, *, matched_send: int) -> CheckFinished:
        number = keys.NumberKeys(ref.tag)
        raw = await self.store.script(
            "check_finish",
            [
                number.current,
                number.failed_checks,
                *keys.shard_outbox(number.shard),
                keys.expiry_schedule(number.shard),
                *keys.stats_keys(number.shard, _wall_ms()),
            ],
            [ref.rand, matched_send, ref.text, self.event_tenants],
        )
        reply = decode_reply(raw, CheckFinishReply)
        return CheckFinished(
            verdict=reply.verdict,
            attempts_left=reply.attempts_left,
            created_ms=reply.created_ms,
            region=reply.region,
            fraud_prefix=reply.fraud_prefix,
            fraud_ip=reply.fraud_ip,
        )

    # --- reading and cancelling -----------------------------------------------------------

    async def read(self, ref: VerificationRef, *, tenant: str) -> Snapshot | None:
        found = keys.VerificationKeys(ref)
        raw = await self.store.script(
            "read", [found.current, found.archived, found.events], [tenant, ref.rand]
        )
        if not raw:
            return None
        reply = decode_reply(raw, ReadReply)
        return Snapshot(
            record=decode_record(ref.tag, reply.record),
            events=decode_events(reply.events),
            now_ms=reply.now_ms,
        )

    async def cancel(self, ref: VerificationRef, *, tenant: str) -> bool:
        number = keys.NumberKeys(ref.tag)
        raw = await self.store.script(
            "cancel",
            [
                number.current,
                *keys.shard_outbox(number.shard),
                keys.expiry_schedule(number.shard),
            ],
            [tenant, ref.rand, ref.text, self.event_tenants],
        )
        return bool(raw) and raw[0] == b"ok"

    # --- deliveries -----------------------------------------------------------------------

    async def record_delivery(
        self,
        ref: VerificationRef,
        event: DeliveryEvent,
        *,
        lifts_cooldown: bool,
        retention_ms: int,
        lane_entry: str | None = None,
    ) -> DeliveryUpdate:
        found = keys.VerificationKeys(ref)
        fragment = event_fragment(event)
        call_keys = [
            found.current,
            found.archived,
            found.events,
            found.reports_seen,
            *keys.shard_outbox(found.shard),
        ]
        args: list[Any] = [
            ref.rand,
            event.send,
            event.status,
            fragment,
            "1" if lifts_cooldown else "0",
            retention_ms,
            # Computed here: the embedded store's Lua (fakeredis) has no redis.sha1hex.
            hashlib.sha256(b"%d|" % event.send + fragment).hexdigest()[:24],
            ref.text,
            self.event_tenants,
        ]
        # The lane stream always (acknowledged only with an entry), then the statistics.
        call_keys += [found.lane, *keys.stats_keys(found.shard, _wall_ms())]
        if lane_entry:
            args.append(lane_entry)
        reply = decode_reply(
            await self.store.script("record_delivery", call_keys, args), DeliveryReply
        )
        return DeliveryUpdate(
            verdict=reply.verdict,
            previous=reply.previous,
            current=reply.current,
            submitted_ms=int(reply.submitted_ms) if reply.submitted_ms else None,
            region=reply.region,
            now_ms=reply.now_ms,
        )

    async def remember_provider_message(
        self, provider: str, message_id: str, message_ref: str, ttl_ms: int
    ) -> None:
        key = keys.provider_message(provider, message_id)
        await self.store.call("provider_message", self.store.redis.set(key, message_ref, px=ttl_ms))

    async def lookup_provider_message(self, provider: str, message_id: str) -> str | None:
        key = keys.provider_message(provider, message_id)
        raw = await self.store.call("provider_message", self.store.redis.get(key))
        if raw is None:
            return None
        return raw.decode() if isinstance(raw, bytes) else str(raw)
