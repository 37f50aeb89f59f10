"""Sending codes (usecases/sending.py) on the in-memory store: starts, resends and every limit
they meet before any hashing."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from otpservice.errors import (
    DestinationNotAllowed,
    InvalidRequest,
    MaxSendsReached,
    RateLimited,
    ResendTooSoon,
    ServiceUnavailable,
    VerificationNotFound,
)
from otpservice.ids import message_ref
from otpservice.usecases.ports import SendCommitted
from tests.unit.world import NUMBER, World, tenant


@pytest.fixture
def world() -> Iterator[World]:
    w = World()
    yield w
    w.close()


async def test_a_start_stores_a_verification_and_queues_its_code(world: World) -> None:
    view = await world.start()
    assert (view.status, view.sends, view.sends_left, view.attempts_left) == ("pending", 1, 4, 5)
    assert view.expires_ms - view.created_ms == 600_000
    assert [e.status for e in view.events] == ["queued"]
    [job] = world.queue.jobs
    assert job.message.to == NUMBER
    ref = world.ids.ref_for_id(view.id, "acme")
    assert ref is not None
    assert job.message.external_id == message_ref(ref, 1)
    assert job.send.number == 1
    # A Polish number is texted in Polish; the code is in the SMS and nowhere in the view.
    assert job.message.text.startswith("Kod Acme:")
    assert world.queue.code_to() not in repr(view)


async def test_the_request_locale_wins_over_the_numbers_country(world: World) -> None:
    await world.start(locale="de-AT")
    assert world.queue.jobs[-1].message.text.startswith("Ihr Code")


async def test_a_start_on_an_open_verification_is_a_resend_on_it_after_the_cooldown(
    world: World,
) -> None:
    first = await world.start()
    with pytest.raises(ResendTooSoon) as early:
        await world.start()
    assert early.value.retry_after == 30
    world.clock.advance(30)
    second = await world.start()
    assert second.id == first.id
    assert (second.sends, second.sends_left) == (2, 3)
    assert len(world.queue.jobs) == 2


async def test_the_resend_cooldown_doubles_after_each_send(world: World) -> None:
    view = await world.start()
    waits = []
    for _ in range(3):
        with pytest.raises(ResendTooSoon) as early:
            await world.sending.resend(world.acme, view.id)
        waits.append(early.value.retry_after)
        world.clock.advance(early.value.retry_after)
        await world.sending.resend(world.acme, view.id)
    assert waits == [30, 60, 120]


async def test_a_verification_sends_at_most_max_sends_codes(world: World) -> None:
    world.acme = tenant(max_sends=2, resend_cooldown_seconds=0)
    view = await world.start()
    await world.sending.resend(world.acme, view.id)
    with pytest.raises(MaxSendsReached) as refused:
        await world.sending.resend(world.acme, view.id)
    # A new verification may start when this one expires.
    assert refused.value.retry_after == 600
    assert len(world.queue.jobs) == 2


async def test_the_numbers_hourly_send_limit_holds_across_verifications(world: World) -> None:
    world.acme = tenant(resend_cooldown_seconds=0, limits={"sends_per_number_per_hour": 2})
    view = await world.start()
    await world.managing.cancel(world.acme, view.id)
    await world.start()
    with pytest.raises(RateLimited) as refused:
        await world.start()
    assert refused.value.scope == "number_hour"
    assert refused.value.retry_after == 1800  # the next of 2 tokens per hour
    assert len(world.queue.jobs) == 2


async def test_the_per_ip_start_limit_counts_per_tenant_and_address(world: World) -> None:
    world.acme = tenant(limits={"starts_per_ip_per_minute": 2})
    await world.start("+48601000001")
    await world.start("+48601000002")
    with pytest.raises(RateLimited) as refused:
        await world.start("+48601000003")
    assert refused.value.scope == "ip"
    await world.start("+48601000004", client_ip="192.0.2.99")
    assert len(world.queue.jobs) == 3


async def test_a_refused_destination_stores_and_sends_nothing(world: World) -> None:
    world.acme = tenant(allowed_countries=("DE",))
    with pytest.raises(DestinationNotAllowed):
        await world.start()
    with pytest.raises(InvalidRequest):
        await world.start("+4915123456789", app_hash="not a hash")
    assert world.queue.jobs == []
    assert world.store.lane_entries == []


async def test_a_resend_of_an_unknown_or_another_tenants_verification_is_not_found(
    world: World,
) -> None:
    view = await world.start()
    for tenant_, verification_id in ((world.other, view.id), (world.acme, "x" * 42)):
        with pytest.raises(VerificationNotFound):
            await world.sending.resend(tenant_, verification_id)


async def test_a_new_start_after_the_verification_ended_makes_a_new_one(world: World) -> None:
    world.acme = tenant(resend_cooldown_seconds=0)
    first = await world.start()
    world.clock.advance(601)
    second = await world.start()
    assert second.id != first.id
    # The earlier one stays readable, as expired.
    assert (await world.managing.read(world.acme, first.id)).status == "expired"


async def test_a_storm_of_conflicts_ends_in_503_not_a_loop(world: World) -> None:
    async def conflict(*_: Any, **__: Any) -> SendCommitted:
        return SendCommitted(verdict="conflict")

    world.store.send_commit = conflict  # type: ignore[method-assign]
    with pytest.raises(ServiceUnavailable):
        await world.start()
    assert world.queue.jobs == []
