"""The client against the real service: `otpservice serve` in development mode as a process
(embedded store, sandbox SMS printed to its stdout, where the tests read the codes), driven
through both the blocking and the asyncio client."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest
from otpservice_client import (
    AsyncClient,
    Client,
    IdempotencyConflict,
    InvalidCodeFormat,
    InvalidPhoneNumber,
    InvalidRequest,
    ResendTooSoon,
    Signals,
    Unauthorized,
    VerificationNotFound,
)

from tests.clients.support import RESEND_COOLDOWN_SECONDS, LiveService, new_phone_number


@pytest.fixture
def otp(live_service: LiveService):
    with Client(live_service.url, live_service.api_key, timeout=10) as client:
        yield client


def wait_until(moment: datetime | None) -> None:
    assert moment is not None
    time.sleep(max(0.0, (moment - datetime.now(UTC)).total_seconds()) + 0.2)


def test_a_login_through_the_blocking_client(otp: Client, live_service, phone) -> None:
    started = otp.start(
        phone,
        locale="en",
        client_ref="login-42",
        signals=Signals(ip="203.0.113.7", device_id="device-1", user_agent="pytest"),
        idempotency_key=True,
    )
    assert (started.to, started.status, started.sends, started.client_ref) == (
        phone,
        "pending",
        1,
        "login-42",
    )
    assert started.replayed is False
    assert started.created_at.tzinfo is not None
    assert started.expires_at > started.created_at

    code = live_service.code(phone)
    checked = otp.verify(code, id=started.id)
    assert (checked.id, checked.status, checked.valid) == (started.id, "approved", True)

    read = otp.get(started.id)
    assert read.status == "approved"
    assert read.delivery.events[0].status == "queued"
    assert read.delivery.events[0].send == 1
    assert all(event.at.tzinfo is not None for event in read.delivery.events)
    # Approved once: the same code again finds nothing.
    with pytest.raises(VerificationNotFound):
        otp.verify(code, id=started.id)


def test_a_check_by_number_and_a_wrong_code(otp: Client, live_service, phone) -> None:
    started = otp.start(phone)
    code = live_service.code(phone)
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    missed = otp.verify(wrong, to=phone)
    assert (missed.valid, missed.status, missed.attempts_left) == (False, "pending", 4)
    with pytest.raises(InvalidCodeFormat) as caught:
        otp.verify("12ab", to=phone)
    assert caught.value.status == 400
    assert otp.get(started.id).attempts_left == 4  # a malformed code costs no attempt
    assert otp.verify(code, to=phone).valid is True


def test_resend_too_soon_then_a_resend_then_cancel(otp: Client, live_service, phone) -> None:
    started = otp.start(phone)
    first_code = live_service.code(phone, nth=1)
    with pytest.raises(ResendTooSoon) as caught:
        otp.resend(started.id)
    assert caught.value.status == 429
    assert caught.value.retry_after is not None
    assert 1 <= caught.value.retry_after <= RESEND_COOLDOWN_SECONDS

    wait_until(started.resend_available_at)
    resent = otp.resend(started.id)
    assert (resent.id, resent.sends, resent.sends_left) == (started.id, 2, started.sends_left - 1)
    second_code = live_service.code(phone, nth=2)
    if second_code != first_code:  # one chance in a million that they are the same
        assert otp.verify(first_code, id=started.id).valid is False

    canceled = otp.cancel(started.id)
    assert canceled.status == "canceled"
    assert otp.get(started.id).status == "canceled"
    with pytest.raises(VerificationNotFound):
        otp.verify(second_code, id=started.id)


def test_an_idempotent_start_is_replayed_and_sends_nothing(
    otp: Client, live_service, phone
) -> None:
    first = otp.start(phone, idempotency_key=f"test-{phone}")
    again = otp.start(phone, idempotency_key=f"test-{phone}")
    assert (again.id, again.replayed) == (first.id, True)
    live_service.code(phone)
    time.sleep(0.3)
    assert len(live_service.sms_texts(phone)) == 1
    with pytest.raises(IdempotencyConflict):
        otp.start(phone, locale="de", idempotency_key=f"test-{phone}")


def test_errors_arrive_as_their_classes(otp: Client, live_service, phone) -> None:
    with Client(live_service.url, "not-the-key") as stranger, pytest.raises(Unauthorized) as caught:
        stranger.start(phone)
    assert (caught.value.status, caught.value.code) == (401, "unauthorized")

    with pytest.raises(InvalidPhoneNumber) as bad_number:
        otp.start("+4860")
    assert bad_number.value.code == "invalid_phone_number"
    assert bad_number.value.detail  # the reason, for people

    with pytest.raises(InvalidRequest) as bad_signals:
        otp.start(phone, signals=Signals(ip="not an address"))
    assert type(bad_signals.value) is InvalidRequest

    with pytest.raises(VerificationNotFound):
        otp.get("no-such-verification")
    with pytest.raises(VerificationNotFound):
        otp.resend("no-such-verification")
    with pytest.raises(VerificationNotFound):
        otp.cancel("no-such-verification")
    assert live_service.sms_texts(phone) == []


async def test_a_login_through_the_asyncio_client(live_service: LiveService, phone) -> None:
    async with AsyncClient(live_service.url, live_service.api_key) as otp:
        started = await otp.start(phone, idempotency_key=True)
        with pytest.raises(ResendTooSoon) as caught:
            await otp.resend(started.id)
        assert caught.value.retry_after is not None

        code = live_service.code(phone)
        checked = await otp.verify(code, to=phone)
        assert (checked.id, checked.valid, checked.status) == (started.id, True, "approved")
        read = await otp.get(started.id)
        assert read.status == "approved"
        assert read.delivery.events

        other_phone = new_phone_number()
        other = await otp.start(other_phone)
        canceled = await otp.cancel(other.id)
        assert (canceled.to, canceled.status) == (other_phone, "canceled")

    async with AsyncClient(live_service.url, "not-the-key") as stranger:
        with pytest.raises(Unauthorized):
            await stranger.get(started.id)
