"""The outboxes of tenant events in Redis (keys.OutboxKeys): one per shard, filled by the
scripts that change verifications in the same atomic step, and one per tenant's fraud-guard slot.
events.py polls them all in one pipelined call, delivers what it claimed, and settles it here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec

from otpservice.events import EventOutbox, OutboxEvent, OutboxPoll, Settled
from otpservice.ids import VerificationRef, parse_ref
from otpservice.store import keys
from otpservice.store.client import ScriptCall, StoreClient
from otpservice.store.replies import EventsClaimReply, decode_reply
from otpservice.store.schema import decode_events, decode_record

MOST_EVENTS = 64
"""Events claimed per outbox and poll."""
MOST_EXPIRIES = 64


def event_tenant_list(tenants: Sequence[str]) -> str:
    """The scripts' form of the tenants with event webhooks: ' a b ' ('' for none)."""
    return f" {' '.join(tenants)} " if tenants else ""


class _Stored(msgspec.Struct, frozen=True):
    """A payload as the scripts write it (_prelude.lua queue_event)."""

    t: str
    tn: str
    at: int
    ref: str = ""
    r: list[str] = msgspec.field(default_factory=list)
    d: dict[str, Any] | None = None
    b: dict[str, Any] | None = None


_stored = msgspec.json.Decoder(_Stored)


class RedisOutbox(EventOutbox):
    """`fraud_tenants`: the tenants whose fraud-guard slot may hold `fraud.blocked` events."""

    def __init__(
        self, store: StoreClient, event_tenants: Sequence[str], fraud_tenants: Sequence[str]
    ) -> None:
        self.store = store
        self._tenants = event_tenant_list(event_tenants)
        self._outboxes = [keys.shard_outbox(shard) for shard in range(keys.SHARDS)] + [
            keys.FraudKeys(tenant).outbox for tenant in fraud_tenants
        ]
        self._labels = [f"s{shard:02d}" for shard in range(keys.SHARDS)] + [
            f"f{tenant}" for tenant in fraud_tenants
        ]

    async def poll(self, *, lease_ms: int) -> OutboxPoll:
        """Every outbox in one round trip; one more to report the expiries found, if any."""
        calls: list[ScriptCall] = []
        for index, outbox in enumerate(self._outboxes):
            schedule = [keys.expiry_schedule(index)] if index < keys.SHARDS else []
            calls.append(
                ("events_claim", [*outbox, *schedule], [lease_ms, MOST_EVENTS, MOST_EXPIRIES])
            )
        raws = await self.store.scripts("events_claim", calls)
        replies = [decode_reply(raw, EventsClaimReply) for raw in raws]
        events: list[OutboxEvent] = []
        unreadable: list[Settled] = []
        expiries: list[ScriptCall] = []
        oldest: list[int] = []
        for index, reply in enumerate(replies):
            if reply.oldest_ms:
                oldest.append(int(float(reply.oldest_ms)))
            for i in range(0, len(reply.claimed), 2):
                event_id = reply.claimed[i].decode()
                found = self._event(index, event_id, reply.claimed[i + 1])
                if found is None:
                    unreadable.append(Settled(outbox=index, id=event_id, next_ms=0))
                else:
                    events.append(found)
            for text in reply.expired:
                ref = parse_ref(text)
                if ref is not None:
                    expiries.append(self._expire_call(index, ref))
        if unreadable:
            await self.settle(unreadable)
        if expiries:
            await self.store.scripts("events_expire", expiries)
        now_ms = replies[0].now_ms if replies else 0
        return OutboxPoll(
            events=events,
            depth=sum(r.depth for r in replies),
            oldest_age_ms=max(0, now_ms - min(oldest)) if oldest else 0,
            now_ms=now_ms,
        )

    async def settle(self, settled: Sequence[Settled]) -> None:
        """Delivered or given up (gone), or failed (due again at `next_ms`): one round trip."""
        by_outbox: dict[int, list[Any]] = {}
        for item in settled:
            by_outbox.setdefault(item.outbox, []).extend([item.id, item.next_ms])
        calls: list[ScriptCall] = [
            ("events_settle", list(self._outboxes[index]), args)
            for index, args in by_outbox.items()
        ]
        if calls:
            await self.store.scripts("events_settle", calls)

    def _expire_call(self, shard: int, ref: VerificationRef) -> ScriptCall:
        found = keys.VerificationKeys(ref)
        return (
            "events_expire",
            [found.current, found.archived, keys.expiry_schedule(shard), *self._outboxes[shard]],
            [ref.rand, ref.text, self._tenants],
        )

    def _event(self, index: int, event_id: str, payload: bytes) -> OutboxEvent | None:
        try:
            stored = _stored.decode(payload)
        except msgspec.DecodeError:
            return None  # not one of ours: dropped
        ref = parse_ref(stored.ref) if stored.ref else None
        record = None
        if ref is not None and stored.r:
            record = decode_record(ref.tag, [v.encode() for v in stored.r])
        delivery = None
        if stored.d is not None:
            found = decode_events(msgspec.json.encode(stored.d))
            delivery = found[0] if found else None
        return OutboxEvent(
            outbox=index,
            id=event_id,
            public_id=f"evt_{self._labels[index]}_{event_id.replace('-', '_')}",
            type=stored.t,
            tenant=stored.tn,
            at_ms=stored.at,
            ref=ref,
            record=record,
            delivery=delivery,
            block=stored.b,
        )
