"""The durable lane against a real Redis: a send outlives the process that stored its code.

A "dead process" here is the Services of a process whose lane never runs: its start stores the
code and claims the lane entry, exactly as a process killed right after answering would leave it.
The live app under test must then claim the entry after the visibility timeout and send it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from litestar.testing import AsyncTestClient
from redis.asyncio import Redis

from otpservice.app import create_app
from otpservice.providers.base import SmsGateway, SmsMessage, SubmitReceipt
from otpservice.providers.sandbox import SandboxGateway, SandboxMessage
from otpservice.services import Services
from otpservice.settings import Settings
from otpservice.store.keys import lane_stream, shard_of
from otpservice.store.lane_store import RedisLane
from otpservice.views import VerificationView
from tests.integration.conftest import API_KEY, metric_value, redis_contents
from tests.integration.stores import IDS, sms_ref

FAST = {"OTP_LANE_VISIBILITY_SECONDS": "1", "OTP_LANE_SWEEP_SECONDS": "0.1"}
NUMBER = "+48601230001"


class _Stalled(SandboxGateway):
    """A provider that never answers: the process holding the send looks alive but stuck."""

    def __init__(self) -> None:
        super().__init__(echo=False)

    async def submit(self, message: SmsMessage) -> SubmitReceipt:
        await asyncio.sleep(3600)
        return await super().submit(message)


class _Slow(SandboxGateway):
    def __init__(self, delay: float) -> None:
        super().__init__(echo=False)
        self.delay = delay

    async def submit(self, message: SmsMessage) -> SubmitReceipt:
        await asyncio.sleep(self.delay)
        return await super().submit(message)


def dead_service(settings: Settings, redis: Redis, gateway: SmsGateway | None = None) -> Services:
    """Stores codes and claims their sends, but its lane never runs: a process killed right
    after answering. (Start its lane to make it a live process.)"""
    return Services(settings, redis, gateway or SandboxGateway(echo=False))


async def start_on(services: Services, settings: Settings, to: str = NUMBER) -> VerificationView:
    return await services.sending.start(
        settings.tenants[0],
        to=to,
        locale=None,
        app_hash=None,
        client_ref=None,
        client_ip="127.0.0.1",
    )


async def sms_to(gateway: SandboxGateway, to: str, timeout: float) -> SandboxMessage:
    deadline = time.monotonic() + timeout
    while (sent := gateway.last_to(to)) is None:
        assert time.monotonic() < deadline, f"no SMS reached {to} within {timeout} s"
        await asyncio.sleep(0.02)
    return sent


def code_in(text: str) -> str:
    return next(w.strip(".:,#") for w in text.split() if w.strip(".:,#").isdigit())


async def lane_entries(redis: Redis, verification_id: str) -> tuple[int, int]:
    """(entries in the shard's stream, entries pending in its group) of this verification."""
    ref = IDS.ref_for_id(verification_id, "acme")
    assert ref is not None
    stream = lane_stream(shard_of(ref.tag))
    if not await redis.exists(stream):
        return 0, 0
    pending = await redis.xpending(stream, "lane")
    return int(await redis.xlen(stream)), int(pending["pending"])


async def test_a_send_is_acknowledged_and_removed_once_the_provider_answered(
    harness: Any, redis: Redis
) -> None:
    started = (await harness.start(NUMBER)).json()
    await harness.code_for(NUMBER)
    assert await lane_entries(redis, started["id"]) == (0, 0)


async def test_a_send_left_by_a_dead_process_is_sent_by_another_and_its_code_works(
    make_settings: Callable[..., Settings], make_harness: Callable[..., Any], redis: Redis
) -> None:
    settings = make_settings(**FAST)
    view = await start_on(dead_service(settings, redis), settings)
    # The entry waits, claimed by the dead process, its code sealed: never in clear.
    assert await lane_entries(redis, view.id) == (1, 1)
    contents = repr(await redis_contents(redis)).encode()
    async with make_harness(**FAST) as h:
        before = await metric_value(h.client, "otp_lane_redeliveries_total", provider="sandbox")
        sent = await sms_to(h.gateway, NUMBER, timeout=5)
        assert sent.external_id == sms_ref(view.id)
        code = code_in(sent.text)
        assert code.encode() not in contents
        result = (await h.verify(code, id=view.id)).json()
        assert result["valid"] is True
        after = await metric_value(h.client, "otp_lane_redeliveries_total", provider="sandbox")
        assert after - before == 1
        # Past another visibility timeout: still exactly one SMS, and the lane is empty.
        await asyncio.sleep(1.5)
        assert [m.external_id for m in h.gateway.outbox] == [sms_ref(view.id)]
        assert await lane_entries(redis, view.id) == (0, 0)


async def test_an_abandoned_send_whose_code_expired_is_dropped_and_marked_failed(
    make_settings: Callable[..., Settings], make_harness: Callable[..., Any], redis: Redis
) -> None:
    policy = {"code_ttl_seconds": 1}
    settings = make_settings(policy, **FAST)
    view = await start_on(dead_service(settings, redis), settings)
    async with make_harness(policy, **FAST) as h:
        before = await metric_value(h.client, "otp_lane_dropped_total", reason="expired")
        deadline = time.monotonic() + 5
        while await lane_entries(redis, view.id) != (0, 0):
            assert time.monotonic() < deadline, "the expired send was never dropped"
            await asyncio.sleep(0.05)
        assert list(h.gateway.outbox) == []
        after = await metric_value(h.client, "otp_lane_dropped_total", reason="expired")
        assert after - before == 1
        shown = (await h.client.get(f"/otp/{view.id}", headers=h.headers)).json()
        assert shown["delivery"]["status"] == "failed"
        last = shown["delivery"]["events"][-1]
        assert (last["status"], last["provider_status"]) == ("failed", "expired_before_send")


async def test_an_abandoned_send_of_a_canceled_verification_is_dropped_unsent(
    make_settings: Callable[..., Settings], make_harness: Callable[..., Any], redis: Redis
) -> None:
    settings = make_settings(**FAST)
    view = await start_on(dead_service(settings, redis), settings)
    async with make_harness(**FAST) as h:
        before = await metric_value(h.client, "otp_lane_dropped_total", reason="stale")
        canceled = await h.client.post(f"/otp/{view.id}/cancel", headers=h.headers)
        assert canceled.json()["status"] == "canceled"
        deadline = time.monotonic() + 5
        while await lane_entries(redis, view.id) != (0, 0):
            assert time.monotonic() < deadline, "the stale send was never dropped"
            await asyncio.sleep(0.05)
        assert list(h.gateway.outbox) == []
        after = await metric_value(h.client, "otp_lane_dropped_total", reason="stale")
        assert after - before == 1


async def test_a_slow_send_stays_with_its_process_while_it_renews_its_claim(
    make_settings: Callable[..., Settings], make_harness: Callable[..., Any], redis: Redis
) -> None:
    """The provider takes 2.5 visibility timeouts: no other process may take the send."""
    slow = _Slow(2.5)
    owner = create_app(make_settings(**FAST), gateway=slow)
    async with AsyncTestClient(app=owner) as client, make_harness(**FAST) as other:
        headers = {"Authorization": f"Bearer {API_KEY}"}
        started = (await client.post("/otp/start", json={"to": NUMBER}, headers=headers)).json()
        await asyncio.sleep(0.5)
        assert await metric_value(client, "otp_lane_depth") >= 1
        sent = await sms_to(slow, NUMBER, timeout=6)
        assert sent.external_id == sms_ref(started["id"])
        await asyncio.sleep(1.2)
        assert list(other.gateway.outbox) == []
        assert await lane_entries(redis, started["id"]) == (0, 0)


async def test_on_shutdown_unfinished_sends_are_handed_back_for_at_once_takeover(
    make_settings: Callable[..., Settings], make_harness: Callable[..., Any], redis: Redis
) -> None:
    """Visibility 30 s: only a hand-back lets the other process send within a few seconds."""
    env = {"OTP_LANE_VISIBILITY_SECONDS": "30", "OTP_LANE_SWEEP_SECONDS": "0.1"}
    settings = make_settings(**env)
    leaving = dead_service(settings, redis, _Stalled())
    leaving.lane.start()
    view = await start_on(leaving, settings)
    await asyncio.sleep(0.2)  # the stalled provider now holds it
    await leaving.lane.stop(grace=0.1)
    async with make_harness(**env) as h:
        sent = await sms_to(h.gateway, NUMBER, timeout=3)
        assert sent.external_id == sms_ref(view.id)
        assert (await h.verify(code_in(sent.text), id=view.id)).json()["valid"] is True


async def test_many_abandoned_sends_are_each_sent_once(
    make_settings: Callable[..., Settings], make_harness: Callable[..., Any], redis: Redis
) -> None:
    settings = make_settings(**FAST)
    dead = dead_service(settings, redis)
    numbers = [f"+486012310{i:02d}" for i in range(40)]
    views = [await start_on(dead, settings, to) for to in numbers]
    async with make_harness(**FAST) as h:
        for to in numbers:
            await sms_to(h.gateway, to, timeout=5)
        await asyncio.sleep(1.2)
        assert sorted(m.external_id for m in h.gateway.outbox) == sorted(
            sms_ref(v.id) for v in views
        )


async def test_the_sweep_forgets_consumers_long_gone_with_nothing_pending(
    make_settings: Callable[..., Settings], redis: Redis
) -> None:
    settings = make_settings(**FAST)
    dead = dead_service(settings, redis)
    view = await start_on(dead, settings)
    ref = IDS.ref_for_id(view.id, "acme")
    assert ref is not None
    stream = lane_stream(shard_of(ref.tag))
    gone = dead.lane.store.consumer.encode()
    await redis.xgroup_createconsumer(stream, "lane", "long-gone")
    await asyncio.sleep(0.05)
    sweeper = RedisLane(dead.store, "sweeper", retention_ms=0)
    await sweeper.sweep(visibility_ms=60_000, batch=8, provider="sandbox")
    names = {c["name"] for c in await redis.xinfo_consumers(stream, "lane")}
    assert {b"long-gone", gone} <= names
    await sweeper.sweep(visibility_ms=60_000, batch=8, provider="sandbox", forget_idle_ms=20)
    names = {c["name"] for c in await redis.xinfo_consumers(stream, "lane")}
    # The dead process still holds a pending send: forgetting it would lose that send.
    assert b"long-gone" not in names
    assert gone in names
