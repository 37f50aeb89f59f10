"""Reading, cancelling, recording deliveries and idempotent starts, on the in-memory store."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from otpservice.domain.delivery import DeliveryStatus
from otpservice.errors import IdempotencyConflict, InvalidPhoneNumber, VerificationNotFound
from otpservice.ids import message_ref
from otpservice.lane import SendOutcome
from otpservice.providers.dlr import RawReport
from tests.unit.world import World


@pytest.fixture
def world() -> Iterator[World]:
    w = World()
    yield w
    w.close()


async def test_a_read_shows_the_verification_and_its_delivery_timeline(world: World) -> None:
    view = await world.start(client_ref="login-42")
    await world.deliveries.record_outcome(
        world.queue.jobs[0].send, SendOutcome(status=DeliveryStatus.SUBMITTED)
    )
    shown = await world.managing.read(world.acme, view.id)
    assert (shown.id, shown.status, shown.client_ref) == (view.id, "pending", "login-42")
    assert shown.delivery_status == "submitted"
    assert [(e.status, e.send, e.provider) for e in shown.events] == [
        ("queued", 1, "sandbox"),
        ("submitted", 1, "sandbox"),
    ]


async def test_a_canceled_verification_is_shown_canceled_and_cannot_be_canceled_again(
    world: World,
) -> None:
    view = await world.start()
    assert (await world.managing.cancel(world.acme, view.id)).status == "canceled"
    with pytest.raises(VerificationNotFound):
        await world.managing.cancel(world.acme, view.id)
    with pytest.raises(VerificationNotFound):
        await world.verify(world.queue.code_to(), id=view.id)


async def test_another_tenant_sees_nothing(world: World) -> None:
    view = await world.start()
    for action in (world.managing.read, world.managing.cancel):
        with pytest.raises(VerificationNotFound):
            await action(world.other, view.id)


async def test_a_verification_is_forgotten_after_its_retention(world: World) -> None:
    view = await world.start()
    world.clock.advance(600 + 3600 - 1)
    assert (await world.managing.read(world.acme, view.id)).status == "expired"
    world.clock.advance(1)
    with pytest.raises(VerificationNotFound):
        await world.managing.read(world.acme, view.id)


def report(reference: str, status: str, error_code: str | None = None) -> RawReport:
    return RawReport(message_ref=reference, raw_status=status, error_code=error_code)


async def test_reports_move_the_delivery_status_and_the_first_terminal_one_wins(
    world: World,
) -> None:
    view = await world.start()
    ref, send = world.last_send()
    ours = message_ref(ref, send)
    recorded = await world.deliveries.ingest_reports(
        "messageflow",
        [report(ours, "DELIVRD"), report(ours, "UNDELIV", "034"), report("nobody-1", "DELIVRD")],
    )
    assert recorded == (2, 1)
    shown = await world.managing.read(world.acme, view.id)
    assert shown.delivery_status == "delivered"
    assert [(e.status, e.error_code) for e in shown.events[1:]] == [
        ("delivered", None),
        ("undelivered", "034"),
    ]
    # The same report again is recorded once only.
    await world.deliveries.ingest_reports("messageflow", [report(ours, "DELIVRD")])
    assert len((await world.managing.read(world.acme, view.id)).events) == 3


async def test_an_undelivered_sms_lifts_the_resend_cooldown(world: World) -> None:
    view = await world.start()
    ref, send = world.last_send()
    await world.deliveries.ingest_reports(
        "messageflow", [report(message_ref(ref, send), "UNDELIV")]
    )
    again = await world.sending.resend(world.acme, view.id)
    assert again.sends == 2


async def test_a_provider_that_reports_by_its_own_id_is_matched_through_the_receipt(
    world: World,
) -> None:
    view = await world.start()
    send = world.queue.jobs[0].send
    outcome = SendOutcome(status=DeliveryStatus.SUBMITTED, provider_message_id="fs-77")
    await world.deliveries.record_outcome(send, outcome)
    recorded = await world.deliveries.ingest_reports("sandbox", [report("fs-77", "delivered")])
    assert recorded == (1, 0)
    assert (await world.managing.read(world.acme, view.id)).delivery_status == "delivered"


async def test_an_idempotent_start_replays_its_response_and_sends_once(world: World) -> None:
    calls = 0

    async def produce() -> bytes:
        nonlocal calls
        calls += 1
        return (await world.start()).id.encode()

    first = await world.starts.run(world.acme, "key-1", b'{"to":1}', produce)
    again = await world.starts.run(world.acme, "key-1", b'{"to":1}', produce)
    assert (first[1], again) == (False, (first[0], True))
    assert (calls, len(world.queue.jobs)) == (1, 1)
    with pytest.raises(IdempotencyConflict):
        await world.starts.run(world.acme, "key-1", b'{"to":2}', produce)

    async def produce_for_other() -> bytes:
        return (await world.start(tenant=world.other)).id.encode()

    # Another tenant's same key is another key.
    assert (await world.starts.run(world.other, "key-1", b"{}", produce_for_other))[1] is False


async def test_a_failed_idempotent_start_frees_its_key(world: World) -> None:
    async def invalid() -> bytes:
        await world.start("+48 not a number")
        return b""

    async def valid() -> bytes:
        return (await world.start()).id.encode()

    with pytest.raises(InvalidPhoneNumber):
        await world.starts.run(world.acme, "key-2", b"{}", invalid)
    _, replayed = await world.starts.run(world.acme, "key-2", b"{}", valid)
    assert replayed is False
