"""The repositories' contract, held against both implementations: the Lua scripts on a real
Redis (single, Cluster or Sentinel, as OTP_TEST_REDIS_MODE says) and usecases/memory.py, which
the use cases' unit tests run on. A behaviour the memory store got wrong would make those unit
tests prove nothing."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from redis.asyncio import Redis

from otpservice.ids import VerificationRef
from otpservice.store.client import StoreClient
from otpservice.store.idempotency import RedisIdempotency
from otpservice.store.verifications import RedisVerifications
from otpservice.usecases.memory import MemoryIdempotency, MemoryVerifications
from otpservice.usecases.ports import DeliveryEvent, IpLimit, SendLimits
from tests.integration.stores import (
    IDS,
    TENANT,
    UNLIMITED,
    fresh_tag,
    new_code,
    send_request,
    start,
)


class Backend:
    def __init__(self, verifications: Any, idempotency: Any, advance: Any) -> None:
        self.verifications = verifications
        self.idempotency = idempotency
        self.advance = advance


@pytest.fixture(params=["memory", "redis"])
async def backend(request: pytest.FixtureRequest, redis: Redis) -> AsyncIterator[Backend]:
    if request.param == "memory":
        now = [1_764_000_000_000]

        async def move(seconds: float) -> None:
            now[0] += int(seconds * 1000)

        yield Backend(MemoryVerifications(lambda: now[0]), MemoryIdempotency(lambda: now[0]), move)
        return
    client = StoreClient(redis, timeout=5.0)
    yield Backend(
        RedisVerifications(client, "contract-test"), RedisIdempotency(client), asyncio.sleep
    )


async def test_a_start_creates_a_pending_verification_with_its_queued_event(
    backend: Backend,
) -> None:
    tag = fresh_tag()
    check = await backend.verifications.send_precheck(
        tenant=TENANT, tag=tag, rand=None, limits=UNLIMITED, ip=None
    )
    assert (check.verdict, check.rand, check.open) == ("new", "", False)
    request = send_request(tag, client_ref="r-1")
    committed = await backend.verifications.send_commit(request, new_code())
    assert (committed.verdict, committed.created) == ("ok", True)
    record = committed.record
    assert record.ref == VerificationRef(tag, request.new_rand)
    assert (record.status, record.sends, record.attempts_left, record.max_sends) == (
        "pending", 1, 5, 5,
    )  # fmt: skip
    assert record.expires_ms - committed.now_ms == 600_000
    assert record.next_resend_ms - committed.now_ms == 30_000
    assert (record.client_ref, record.delivery_status, record.tenant) == ("r-1", "queued", TENANT)
    assert committed.queued.status == "queued"
    snapshot = await backend.verifications.read(record.ref, tenant=TENANT)
    assert snapshot.record == record
    assert [(e.status, e.send, e.provider) for e in snapshot.events] == [("queued", 1, "sandbox")]
    assert await backend.verifications.read(record.ref, tenant="other") is None


async def test_a_send_on_an_open_verification_follows_the_cooldown_schedule(
    backend: Backend,
) -> None:
    tag = fresh_tag()
    schedule = {"cooldowns_ms": (200, 400, 400, 400, 400)}
    ref = await start(backend.verifications, tag, **schedule)
    check = await backend.verifications.send_precheck(
        tenant=TENANT, tag=tag, rand=ref.rand, limits=UNLIMITED, ip=None
    )
    assert check.verdict == "too_soon"
    assert 0 < check.wait_ms <= 200
    await backend.advance(0.25)
    check = await backend.verifications.send_precheck(
        tenant=TENANT, tag=tag, rand=ref.rand, limits=UNLIMITED, ip=None
    )
    assert (check.verdict, check.rand, check.open, check.salt) == (
        "resend",
        ref.rand,
        True,
        b"s" * 16,
    )
    request = send_request(tag, by_id=True, seen_rand=ref.rand, seen_open=True, **schedule)
    committed = await backend.verifications.send_commit(request, new_code(b"e" * 32))
    assert (committed.verdict, committed.created, committed.record.sends) == ("ok", False, 2)
    assert committed.record.next_resend_ms - committed.now_ms == 400


async def test_sends_stop_at_max_sends_until_the_verification_expires(backend: Backend) -> None:
    tag = fresh_tag()
    ref = await start(backend.verifications, tag, max_sends=1, cooldowns_ms=(0,))
    check = await backend.verifications.send_precheck(
        tenant=TENANT, tag=tag, rand=None, limits=UNLIMITED, ip=None
    )
    assert (check.verdict, check.rand) == ("max_sends", ref.rand)
    assert 590_000 < check.wait_ms <= 600_000


async def test_the_numbers_send_buckets_and_the_ip_bucket_refuse_with_a_wait(
    backend: Backend,
) -> None:
    tag = fresh_tag()
    limits = SendLimits(sends_per_hour=1, sends_per_day=10)
    await start(backend.verifications, tag, limits=limits, cooldowns_ms=(0,))
    check = await backend.verifications.send_precheck(
        tenant=TENANT, tag=tag, rand=None, limits=limits, ip=None
    )
    assert check.verdict == "hour"
    assert 3_590_000 < check.wait_ms <= 3_600_000
    ip = IpLimit(ip_tag=IDS.ip_tag(TENANT, "192.0.2.7"), limit=1, period_ms=60_000)
    other = fresh_tag()
    waits = [
        (
            await backend.verifications.send_precheck(
                tenant=TENANT, tag=other, rand=None, limits=UNLIMITED, ip=ip
            )
        ).ip_wait_ms
        for _ in range(2)
    ]
    assert waits[0] == 0
    assert 59_000 < waits[1] <= 60_000


async def test_a_commit_after_another_request_changed_the_number_is_a_conflict(
    backend: Backend,
) -> None:
    tag = fresh_tag()
    late = send_request(tag)  # pre-checked when the number had nothing
    await start(backend.verifications, tag)
    assert (await backend.verifications.send_commit(late, new_code())).verdict == "conflict"


async def test_a_new_verification_moves_the_numbers_earlier_one_aside_still_readable(
    backend: Backend,
) -> None:
    tag = fresh_tag()
    first = await start(backend.verifications, tag, ttl_ms=100)
    await backend.advance(0.15)
    second = await start(backend.verifications, tag)
    assert second != first
    old = await backend.verifications.read(first, tenant=TENANT)
    assert (old.record.ref, old.record.status) == (first, "pending")
    assert old.record.expires_ms <= old.now_ms
    assert (await backend.verifications.read(second, tenant=TENANT)).record.sends == 1


async def test_checks_take_attempts_before_hashing_and_approve_once(backend: Backend) -> None:
    tag = fresh_tag()
    ref = await start(backend.verifications, tag, max_attempts=3)
    store = backend.verifications
    begun = await store.check_begin(
        tenant=TENANT, tag=tag, rand=None, failed_limit=10, failed_window_ms=60_000
    )
    assert (begun.verdict, begun.rand, begun.salt, begun.digests, begun.sends) == (
        "ok", ref.rand, b"s" * 16, (b"d" * 32,), 1,
    )  # fmt: skip
    assert (await store.check_finish(ref, matched_send=0)).verdict == "pending"
    await store.check_begin(
        tenant=TENANT, tag=tag, rand=ref.rand, failed_limit=10, failed_window_ms=60_000
    )
    finished = await store.check_finish(ref, matched_send=1)
    assert (finished.verdict, finished.attempts_left, finished.region) == ("approved", 1, "PL")
    assert (await store.check_finish(ref, matched_send=1)).verdict == "not_found"
    again = await store.check_begin(
        tenant=TENANT, tag=tag, rand=ref.rand, failed_limit=10, failed_window_ms=60_000
    )
    assert again.verdict == "not_found"
    shown = await store.read(ref, tenant=TENANT)
    assert (shown.record.status, shown.record.attempts_left) == ("approved", 1)


async def test_the_last_attempt_with_a_wrong_code_fails_the_verification(
    backend: Backend,
) -> None:
    tag = fresh_tag()
    ref = await start(backend.verifications, tag, max_attempts=1)
    store = backend.verifications
    await store.check_begin(tenant=TENANT, tag=tag, rand=None, failed_limit=10, failed_window_ms=1)
    assert (await store.check_finish(ref, matched_send=0)).verdict == "failed"
    assert (await store.read(ref, tenant=TENANT)).record.status == "failed"


async def test_failed_checks_are_capped_and_a_right_code_gives_its_one_back(
    backend: Backend,
) -> None:
    tag = fresh_tag()
    store = backend.verifications
    window = {"failed_limit": 2, "failed_window_ms": 60_000}
    first = await start(store, tag, cooldowns_ms=(0,))
    await store.check_begin(tenant=TENANT, tag=tag, rand=None, **window)
    await store.check_finish(first, matched_send=1)  # right: given back
    await store.check_begin(tenant=TENANT, tag=tag, rand=None, **window)
    assert (await store.check_finish(first, matched_send=0)).verdict == "not_found"  # approved
    second = await start(store, tag)
    for _ in range(2):
        begun = await store.check_begin(tenant=TENANT, tag=tag, rand=None, **window)
        assert begun.verdict == "ok"
        assert (await store.check_finish(second, matched_send=0)).verdict == "pending"
    refused = await store.check_begin(tenant=TENANT, tag=tag, rand=None, **window)
    assert refused.verdict == "rate_limited"
    assert 59_000 < refused.wait_ms <= 60_000


async def test_the_previous_digest_is_offered_only_to_tenants_that_accept_it(
    backend: Backend,
) -> None:
    store = backend.verifications
    for accepted in (False, True):
        tag = fresh_tag()
        options = {"accept_previous": accepted, "cooldowns_ms": (0, 0)}
        ref = await start(store, tag, b"1" * 32, **options)
        await start(store, tag, b"2" * 32, **options)
        begun = await store.check_begin(
            tenant=TENANT, tag=tag, rand=ref.rand, failed_limit=10, failed_window_ms=60_000
        )
        assert begun.digests == ((b"2" * 32, b"1" * 32) if accepted else (b"2" * 32,))
        finished = await store.check_finish(ref, matched_send=1)
        assert finished.verdict == ("approved" if accepted else "pending")


async def test_cancel_ends_an_open_verification_of_its_tenant_only(backend: Backend) -> None:
    store = backend.verifications
    ref = await start(store, fresh_tag())
    assert await store.cancel(ref, tenant="other") is False
    assert await store.cancel(ref, tenant=TENANT) is True
    assert await store.cancel(ref, tenant=TENANT) is False
    shown = await store.read(ref, tenant=TENANT)
    assert shown.record.status == "canceled"
    assert shown.record.finished_ms is not None


def event(status: str, send: int = 1, **fields: Any) -> DeliveryEvent:
    return DeliveryEvent(status=status, at_ms=0, send=send, provider="messageflow", **fields)


async def test_delivery_events_are_recorded_once_and_the_first_terminal_status_wins(
    backend: Backend,
) -> None:
    store = backend.verifications
    ref = await start(store, fresh_tag())
    options = {"lifts_cooldown": False, "retention_ms": 60_000}
    submitted = await store.record_delivery(ref, event("submitted"), **options)
    assert (submitted.verdict, submitted.previous, submitted.current) == (
        "recorded", "queued", "submitted",
    )  # fmt: skip
    delivered = await store.record_delivery(
        ref, event("delivered", provider_status="DELIVRD"), **options
    )
    assert (delivered.current, delivered.region) == ("delivered", "PL")
    assert delivered.submitted_ms is not None
    late = await store.record_delivery(ref, event("undelivered", error_code="034"), **options)
    assert (late.verdict, late.current) == ("recorded", "delivered")
    duplicate = await store.record_delivery(
        ref, event("delivered", provider_status="DELIVRD"), **options
    )
    assert duplicate.verdict == "duplicate"
    unknown_send = await store.record_delivery(ref, event("delivered", send=2), **options)
    assert unknown_send.verdict == "unmatched"
    nobody = VerificationRef(ref.tag, IDS.new_rand())
    assert (
        await store.record_delivery(nobody, event("delivered"), **options)
    ).verdict == "unmatched"
    shown = await store.read(ref, tenant=TENANT)
    assert [(e.status, e.provider_status, e.error_code) for e in shown.events] == [
        ("queued", None, None),
        ("submitted", None, None),
        ("delivered", "DELIVRD", None),
        ("undelivered", None, "034"),
    ]


async def test_an_undelivered_report_lifts_the_resend_cooldown(backend: Backend) -> None:
    store = backend.verifications
    tag = fresh_tag()
    ref = await start(store, tag)
    await store.record_delivery(ref, event("undelivered"), lifts_cooldown=True, retention_ms=1)
    check = await store.send_precheck(
        tenant=TENANT, tag=tag, rand=ref.rand, limits=UNLIMITED, ip=None
    )
    assert check.verdict == "resend"


async def test_a_provider_message_id_maps_to_its_send(backend: Backend) -> None:
    store = backend.verifications
    await store.remember_provider_message("flowstates", "fs-1", "ref-1", 60_000)
    assert await store.lookup_provider_message("flowstates", "fs-1") == "ref-1"
    assert await store.lookup_provider_message("messageflow", "fs-1") is None


async def test_idempotency_keys_reserve_replay_conflict_and_release(backend: Backend) -> None:
    keys = backend.idempotency
    assert (await keys.reserve(TENANT, "k", "fp", 60_000)).verdict == "reserved"
    assert (await keys.reserve(TENANT, "k", "fp", 60_000)).verdict == "in_progress"
    assert (await keys.reserve(TENANT, "k", "other", 60_000)).verdict == "conflict"
    await keys.complete(TENANT, "k", "fp", b'{"id": "x"}')
    replay = await keys.reserve(TENANT, "k", "fp", 60_000)
    assert (replay.verdict, replay.response) == ("replay", b'{"id": "x"}')
    assert (await keys.reserve("other", "k", "fp", 60_000)).verdict == "reserved"
    await keys.release(TENANT, "k")
    assert (await keys.reserve(TENANT, "k", "fp2", 60_000)).verdict == "reserved"
