"""What the client sends for each route and what it makes of the answers, through
httpx.MockTransport: no service involved."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime

import httpx
import pytest
from otpservice_client import (
    AsyncClient,
    CheckResult,
    Client,
    DeliveryEvent,
    Signals,
    Verification,
    new_idempotency_key,
)

from tests.clients.fakes import VERIFICATION_ID, Script, check_json, verification_json

BASE_URL = "http://otp.test"
API_KEY = "sk_live_do_not_print"


def created(**changes) -> httpx.Response:
    return httpx.Response(201, json=verification_json(**changes))


def test_start_posts_only_the_fields_given_with_the_api_key() -> None:
    script = Script(created())
    with Client(BASE_URL, API_KEY, transport=script.transport) as otp:
        otp.start(
            "+48601234567",
            locale="pl",
            client_ref="login-42",
            signals=Signals(ip="203.0.113.7", user_agent="Firefox"),
        )
    (request,) = script.requests
    assert (request.method, request.url.path) == ("POST", "/otp/start")
    assert request.headers["authorization"] == f"Bearer {API_KEY}"
    assert request.headers["content-type"] == "application/json"
    assert request.headers["user-agent"].startswith("otpservice-client/")
    assert "idempotency-key" not in request.headers
    assert json.loads(request.content) == {
        "to": "+48601234567",
        "locale": "pl",
        "client_ref": "login-42",
        "signals": {"ip": "203.0.113.7", "user_agent": "Firefox"},
    }


def test_start_sends_the_idempotency_key_given_or_a_new_one() -> None:
    script = Script(created(), created(), created())
    with Client(BASE_URL, API_KEY, transport=script.transport) as otp:
        otp.start("+48601234567", idempotency_key="login-42-try-1")
        otp.start("+48601234567", idempotency_key=True)
        otp.start("+48601234567", idempotency_key=True)
    keys = [r.headers["idempotency-key"] for r in script.requests]
    assert keys[0] == "login-42-try-1"
    assert all(re.fullmatch(r"idem_[A-Za-z0-9_-]{32}", key) for key in keys[1:])
    assert keys[1] != keys[2]
    assert new_idempotency_key() != new_idempotency_key()


@pytest.mark.parametrize("key", ["", "k" * 256, "ключ", "two\nlines"])
def test_an_idempotency_key_the_service_would_refuse_is_a_value_error_before_any_request(
    key,
) -> None:
    script = Script()
    with Client(BASE_URL, API_KEY, transport=script.transport) as otp, pytest.raises(ValueError):
        otp.start("+48601234567", idempotency_key=key)
    assert script.requests == []


def test_a_replayed_start_is_marked_replayed() -> None:
    script = Script(
        created(),
        httpx.Response(201, json=verification_json(), headers={"Idempotent-Replayed": "true"}),
    )
    with Client(BASE_URL, API_KEY, transport=script.transport) as otp:
        first = otp.start("+48601234567", idempotency_key="k")
        again = otp.start("+48601234567", idempotency_key="k")
    assert (first.replayed, again.replayed) == (False, True)
    assert first.id == again.id


def test_a_verification_is_typed_with_aware_timestamps_and_its_delivery_events() -> None:
    script = Script(httpx.Response(200, json=verification_json(unknown_future_field=1)))
    with Client(BASE_URL, API_KEY, transport=script.transport) as otp:
        verification = otp.get(VERIFICATION_ID)
    assert isinstance(verification, Verification)
    assert verification.created_at == datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
    assert verification.resend_available_at == datetime(2026, 11, 23, 10, 0, 30, tzinfo=UTC)
    assert verification.delivery.events == (
        DeliveryEvent(
            status="queued",
            at=datetime(2026, 11, 23, 10, 0, tzinfo=UTC),
            send=1,
            provider="sandbox",
            provider_status=None,
            error_code=None,
        ),
    )
    assert (verification.status, verification.client_ref, verification.replayed) == (
        "pending",
        "login-42",
        False,
    )


def test_verify_sends_the_code_with_exactly_one_of_id_and_to() -> None:
    script = Script(httpx.Response(200, json=check_json()), httpx.Response(200, json=check_json()))
    with Client(BASE_URL, API_KEY, transport=script.transport) as otp:
        by_id = otp.verify("123456", id=VERIFICATION_ID)
        by_number = otp.verify("123456", to="+48601234567")
    assert by_id == CheckResult(id=VERIFICATION_ID, status="approved", valid=True, attempts_left=4)
    assert by_number.valid is True
    assert [json.loads(r.content) for r in script.requests] == [
        {"code": "123456", "id": VERIFICATION_ID},
        {"code": "123456", "to": "+48601234567"},
    ]
    assert {r.url.path for r in script.requests} == {"/otp/verify"}


@pytest.mark.parametrize("kwargs", [{}, {"id": VERIFICATION_ID, "to": "+48601234567"}])
def test_verify_without_exactly_one_of_id_and_to_is_a_value_error_before_any_request(
    kwargs,
) -> None:
    script = Script()
    with (
        Client(BASE_URL, API_KEY, transport=script.transport) as otp,
        pytest.raises(ValueError, match="exactly one of"),
    ):
        otp.verify("123456", **kwargs)
    assert script.requests == []


async def test_the_asyncio_client_checks_the_same_before_any_request() -> None:
    script = Script()
    async with AsyncClient(BASE_URL, API_KEY, transport=script.transport) as otp:
        with pytest.raises(ValueError, match="exactly one of"):
            await otp.verify("123456")
        with pytest.raises(ValueError, match="must not be empty"):
            await otp.get("")
    assert script.requests == []


def test_resend_cancel_and_get_name_the_verification_in_the_path() -> None:
    script = Script(*(httpx.Response(200, json=verification_json()) for _ in range(4)))
    with Client(BASE_URL, API_KEY, transport=script.transport) as otp:
        otp.resend(VERIFICATION_ID)
        otp.cancel(VERIFICATION_ID)
        otp.get(VERIFICATION_ID)
        otp.get("../start")
    assert [(r.method, r.url.raw_path.decode()) for r in script.requests] == [
        ("POST", f"/otp/{VERIFICATION_ID}/resend"),
        ("POST", f"/otp/{VERIFICATION_ID}/cancel"),
        ("GET", f"/otp/{VERIFICATION_ID}"),
        ("GET", "/otp/..%2Fstart"),
    ]
    assert all(r.content == b"" for r in script.requests[:2])


async def test_the_asyncio_client_sends_the_same_requests() -> None:
    script = Script(
        created(),
        httpx.Response(200, json=check_json()),
        httpx.Response(200, json=verification_json()),
        httpx.Response(200, json=verification_json(status="canceled")),
        httpx.Response(200, json=verification_json()),
    )
    async with AsyncClient(BASE_URL, API_KEY, transport=script.transport) as otp:
        started = await otp.start("+48601234567", idempotency_key="k")
        checked = await otp.verify("123456", id=started.id)
        await otp.resend(started.id)
        canceled = await otp.cancel(started.id)
        await otp.get(started.id)
    assert checked.valid is True
    assert canceled.status == "canceled"
    assert [(r.method, r.url.path) for r in script.requests] == [
        ("POST", "/otp/start"),
        ("POST", "/otp/verify"),
        ("POST", f"/otp/{VERIFICATION_ID}/resend"),
        ("POST", f"/otp/{VERIFICATION_ID}/cancel"),
        ("GET", f"/otp/{VERIFICATION_ID}"),
    ]
    assert script.requests[0].headers["idempotency-key"] == "k"


def test_the_api_key_is_not_in_the_client_s_repr() -> None:
    with Client(BASE_URL, API_KEY) as otp:
        assert API_KEY not in repr(otp)
        assert BASE_URL in repr(otp)


def test_leaving_the_block_closes_the_connection_pool() -> None:
    with Client(BASE_URL, API_KEY) as otp:
        pass
    assert otp._http.is_closed


@pytest.mark.parametrize("api_key", ["", "two\nlines"])
def test_an_unusable_api_key_is_refused_at_construction(api_key) -> None:
    with pytest.raises(ValueError, match="api_key"):
        Client(BASE_URL, api_key)
