"""The first terminal delivery status wins, as the real record_delivery Lua script applies it.

Hypothesis draws report sequences; each one runs against a fresh verification in a real Redis,
through `VerificationStore` (so the Lua scripts, prelude and all, run for real), and is checked
step by step against the Python model `domain.delivery.next_status`.

Hypothesis does not mix with pytest-asyncio's per-test loops, so this test is synchronous and runs
each example on a private event loop, with a Redis client made for that loop and kept for the
module (a module-scoped fixture, which Hypothesis allows).
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterator
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from redis.asyncio import Redis

from otpservice.domain.delivery import RESEND_UNLOCKING, DeliveryStatus, is_terminal, next_status
from otpservice.settings import Secret
from otpservice.store.connection import connect
from otpservice.store.keys import Keyspace, VerificationKeys
from otpservice.store.redis_store import SendRequest, VerificationStore
from otpservice.views import event_fragment
from tests.redis_server import RedisServer

TENANT = "acme"
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
_numbers = itertools.count(1)


class LuaStore:
    def __init__(self, loop: asyncio.AbstractEventLoop, client: Redis) -> None:
        self.loop = loop
        self.client = client
        self.store = VerificationStore(client, Keyspace(Secret(b"p" * 32)), timeout=5.0)

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


async def fresh_verification(store: VerificationStore, *, accepted: bool) -> VerificationKeys:
    """A started verification; with `accepted`, its SMS was accepted (queued -> submitted)."""
    number = store.keys.number(f"+4860{next(_numbers):07d}", TENANT)
    commit = await store.send_commit(
        number,
        SendRequest(
            mode="number",
            tenant=TENANT,
            expected_rand="",
            new_rand=store.keys.new_rand(),
            salt=b"s" * 16,
            digest=b"d" * 32,
            sends_per_hour=1000,
            sends_per_day=1000,
            ttl_ms=600_000,
            max_attempts=5,
            max_sends=5,
            cooldown_base_ms=30_000,
            cooldown_cap_ms=900_000,
            retention_ms=3_600_000,
            e164="+48600000000",
            region="PL",
            client_ref="",
            accept_previous=False,
            provider="sandbox",
            queued_event=event_fragment("queued", "sandbox"),
            locale="pl",
            app_hash="",
            sealed_code=b"sealed",
            consumer="property-test",
        ),
    )
    assert commit.verdict == "ok"
    keys = number.verification(commit.rand)
    if not accepted:
        return keys
    # What the lane records when the provider accepts the SMS.
    receipt = await store.record_delivery(
        keys,
        send=1,
        status="submitted",
        event=event_fragment("submitted", "sandbox", "accepted"),
        lifts_cooldown=False,
        retention_ms=3_600_000,
        lane_entry=commit.entry,
    )
    assert (receipt.verdict, receipt.current) == ("recorded", "submitted")
    return keys


async def report(store: VerificationStore, keys: VerificationKeys, status: DeliveryStatus) -> Any:
    """One provider report, as OtpService.record_delivery hands it to the store."""
    return await store.record_delivery(
        keys,
        send=1,
        status=status.value,
        event=event_fragment(status.value, "messageflow", status.value.upper()),
        lifts_cooldown=status in RESEND_UNLOCKING,
        retention_ms=3_600_000,
    )


async def state(store: VerificationStore, keys: VerificationKeys) -> tuple[dict, list]:
    client = store.client
    events = await client.get(keys.events)
    return await client.hgetall(keys.record), events.split(b"\n") if events else []


async def check_sequence(
    store: VerificationStore, sequence: list[DeliveryStatus], *, accepted: bool = True
) -> None:
    """Apply `sequence` as provider reports; `accepted` False: they race the submit receipt."""
    keys = await fresh_verification(store, accepted=accepted)
    start = DeliveryStatus.SUBMITTED if accepted else DeliveryStatus.QUEUED
    model = start
    record, events = await state(store, keys)
    assert record[b"ds"] == start.value.encode()
    seen: set[DeliveryStatus] = set()
    for status in sequence:
        stored_before = DeliveryStatus(record[b"ds"].decode())
        update = await report(store, keys, status)
        after, after_events = await state(store, keys)
        stored = DeliveryStatus(after[b"ds"].decode())
        model = next_status(model, status)

        if status in seen:
            # (c) A report seen before (a provider retrying, even a whole batch out of order)
            # is a no-op: no field, no event.
            assert update.verdict == "duplicate"
            assert (after, after_events) == (record, events)
        else:
            assert update.verdict == "recorded"
            assert len(after_events) == len(events) + 1
            event = msgspec.json.decode(after_events[-1])
            assert (event["status"], event["send"]) == (status.value, 1)
        # (b) The stored status is the model's, at every step and so at the end.
        assert stored == model, (sequence, status)
        # (a) A terminal status never moves.
        if is_terminal(stored_before):
            assert stored == stored_before
        # A report that moves nothing leaves the status time (and the submit time) alone.
        if stored == stored_before:
            assert after[b"du"] == record[b"du"]
            assert after.get(b"sa") == record.get(b"sa")
        # Only the report that makes the status a failure lifts the resend cooldown.
        lifted = stored != stored_before and stored in RESEND_UNLOCKING
        assert (after[b"nr"] != record[b"nr"]) == lifted, (sequence, status)

        # (c) Repeating the report at once changes nothing either.
        again = await report(store, keys, status)
        assert again.verdict == "duplicate"
        assert await state(store, keys) == (after, after_events)

        record, events = after, after_events
        seen.add(status)

    final, _ = await state(store, keys)
    folded = start
    for status in sequence:
        folded = next_status(folded, status)
    assert final[b"ds"].decode() == folded.value


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
