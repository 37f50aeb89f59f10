"""The first terminal delivery status wins, as the real record_delivery Lua script applies it.

Hypothesis draws report sequences; each one runs against a fresh verification in a real Redis,
through `RedisVerifications` (so the Lua scripts, prelude and all, run for real), and is checked
step by step against the Python model `domain.delivery.next_status`.

Hypothesis does not mix with pytest-asyncio's per-test loops, so this test is synchronous and runs
each example on a private event loop, with a Redis client made for that loop and kept for the
module (a module-scoped fixture, which Hypothesis allows).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from redis.asyncio import Redis

from otpservice.domain.delivery import RESEND_UNLOCKING, DeliveryStatus, is_terminal, next_status
from otpservice.ids import VerificationRef
from otpservice.store.client import StoreClient
from otpservice.store.connection import connect
from otpservice.store.verifications import RedisVerifications
from otpservice.usecases.ports import DeliveryEvent, Snapshot
from tests.integration.stores import TENANT, fresh_tag, start
from tests.support.redis_servers import RedisServer

REPORTED = [
    DeliveryStatus.QUEUED,
    DeliveryStatus.SUBMITTED,
    DeliveryStatus.DELIVERED,
    DeliveryStatus.UNDELIVERED,
    DeliveryStatus.EXPIRED,
    DeliveryStatus.REJECTED,
    DeliveryStatus.FAILED,
    DeliveryStatus.UNKNOWN,
]


class LuaStore:
    def __init__(self, loop: asyncio.AbstractEventLoop, client: Redis) -> None:
        self.loop = loop
        self.client = client
        self.store = RedisVerifications(StoreClient(client, timeout=5.0), "property-test")

    def run(self, coro: Any) -> Any:
        return self.loop.run_until_complete(coro)


@pytest.fixture(scope="module")
def lua_store(redis_server: RedisServer) -> Iterator[LuaStore]:
    loop = asyncio.new_event_loop()
    client = connect(redis_server.url, 5.0)
    store = LuaStore(loop, client)
    store.run(client.flushall())
    yield store
    store.run(client.aclose())
    loop.close()


def event(status: DeliveryStatus, provider_status: str | None = None) -> DeliveryEvent:
    return DeliveryEvent(
        status=status.value, at_ms=0, send=1, provider="messageflow",
        provider_status=provider_status,
    )  # fmt: skip


async def fresh_verification(store: RedisVerifications, *, accepted: bool) -> VerificationRef:
    """A started verification; with `accepted`, its SMS was accepted (queued -> submitted)."""
    ref = await start(store, fresh_tag())
    if not accepted:
        return ref
    # What the lane records when the provider accepts the SMS.
    receipt = await store.record_delivery(
        ref,
        event(DeliveryStatus.SUBMITTED, "accepted"),
        lifts_cooldown=False,
        retention_ms=3_600_000,
    )
    assert (receipt.verdict, receipt.current) == ("recorded", "submitted")
    return ref


async def report(store: RedisVerifications, ref: VerificationRef, status: DeliveryStatus) -> Any:
    """One provider report, as RecordDeliveries hands it to the store."""
    return await store.record_delivery(
        ref,
        event(status, status.value.upper()),
        lifts_cooldown=status in RESEND_UNLOCKING,
        retention_ms=3_600_000,
    )


async def state(store: RedisVerifications, ref: VerificationRef) -> Snapshot:
    snapshot = await store.read(ref, tenant=TENANT)
    assert snapshot is not None
    return msgspec.structs.replace(snapshot, now_ms=0)


async def check_sequence(
    store: RedisVerifications, sequence: list[DeliveryStatus], *, accepted: bool = True
) -> None:
    """Apply `sequence` as provider reports; `accepted` False: they race the submit receipt."""
    ref = await fresh_verification(store, accepted=accepted)
    first = DeliveryStatus.SUBMITTED if accepted else DeliveryStatus.QUEUED
    model = first
    before = await state(store, ref)
    assert before.record.delivery_status == first.value
    seen: set[DeliveryStatus] = set()
    for status in sequence:
        stored_before = DeliveryStatus(before.record.delivery_status)
        update = await report(store, ref, status)
        after = await state(store, ref)
        stored = DeliveryStatus(after.record.delivery_status)
        model = next_status(model, status)

        if status in seen:
            # (c) A report seen before (a provider retrying, even a whole batch out of order)
            # is a no-op: no field, no event.
            assert update.verdict == "duplicate"
            assert after == before
        else:
            assert update.verdict == "recorded"
            assert len(after.events) == len(before.events) + 1
            last = after.events[-1]
            assert (last.status, last.send) == (status.value, 1)
        # (b) The stored status is the model's, at every step and so at the end.
        assert stored == model, (sequence, status)
        # (a) A terminal status never moves.
        if is_terminal(stored_before):
            assert stored == stored_before
        # A report that moves nothing leaves the status time (and the submit time) alone.
        if stored == stored_before:
            assert after.record.delivery_updated_ms == before.record.delivery_updated_ms
            assert after.record.submitted_ms == before.record.submitted_ms
        # Only the report that makes the status a failure lifts the resend cooldown.
        lifted = stored != stored_before and stored in RESEND_UNLOCKING
        moved = after.record.next_resend_ms != before.record.next_resend_ms
        assert moved == lifted, (sequence, status)

        # (c) Repeating the report at once changes nothing either.
        again = await report(store, ref, status)
        assert again.verdict == "duplicate"
        assert await state(store, ref) == after

        before = after
        seen.add(status)

    final = await state(store, ref)
    folded = first
    for status in sequence:
        folded = next_status(folded, status)
    assert final.record.delivery_status == folded.value


@settings(max_examples=60, deadline=None, database=None)
@given(sequence=st.lists(st.sampled_from(REPORTED), min_size=1, max_size=12))
def test_the_first_terminal_status_wins_in_the_lua_script(
    lua_store: LuaStore, sequence: list[DeliveryStatus]
) -> None:
    lua_store.run(check_sequence(lua_store.store, sequence))


@settings(max_examples=30, deadline=None, database=None)
@given(sequence=st.lists(st.sampled_from(REPORTED), min_size=1, max_size=12))
def test_reports_racing_the_submit_receipt_follow_the_same_rule(
    lua_store: LuaStore, sequence: list[DeliveryStatus]
) -> None:
    """A DLR may arrive before the lane records `submitted`: the fold then starts at queued."""
    lua_store.run(check_sequence(lua_store.store, sequence, accepted=False))


def test_each_terminal_status_is_kept_against_every_later_report(lua_store: LuaStore) -> None:
    """The exhaustive pairs, so every terminal/later combination runs whatever Hypothesis draws."""
    terminals = [s for s in REPORTED if is_terminal(s)]
    for first in terminals:
        for later in REPORTED:
            lua_store.run(check_sequence(lua_store.store, [first, later, first]))
