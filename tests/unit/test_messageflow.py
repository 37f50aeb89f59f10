"""The MessageFlow gateway against a mocked provider: the request it sends, each answer it reads."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
import pytest

from otpservice.errors import ProviderError, ProviderRejected, ProviderUnavailable
from otpservice.providers.base import SmsMessage, SubmitReceipt
from otpservice.providers.messageflow import MessageFlowGateway

SMS_TEXT = "Your Acme code is 482913"
Handler = Callable[[httpx.Request], httpx.Response | Awaitable[httpx.Response]]


def sms(validity_seconds: int = 600, webhook_url: str | None = None) -> SmsMessage:
    return SmsMessage(
        to="+48601234567",
        text=SMS_TEXT,
        sender="Acme",
        external_id="ext-1",
        validity_seconds=validity_seconds,
        webhook_url=webhook_url,
    )


def envelope(status: int, body: object) -> Handler:
    return lambda request: httpx.Response(status, json=body)


OK = {"data": [{"status": "queued"}], "errors": [], "meta": {"status": 200}}


class Recorder:
    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.requests: list[httpx.Request] = []

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.handler(request)
        return await answer if isinstance(answer, Awaitable) else answer


@pytest.fixture
async def make_gateway() -> AsyncIterator[Callable[..., tuple[MessageFlowGateway, Recorder]]]:
    gateways: list[MessageFlowGateway] = []

    def build(
        handler: Handler, *, base_url: str = "https://priority.example/", total_timeout: float = 5
    ) -> tuple[MessageFlowGateway, Recorder]:
        recorder = Recorder(handler)
        gateway = MessageFlowGateway(
            httpx.AsyncClient(transport=httpx.MockTransport(recorder)),
            base_url=base_url,
            api_key="api-key-1",
            app_key="app-key-1",
            total_timeout=total_timeout,
        )
        gateways.append(gateway)
        return gateway, recorder

    yield build
    for gateway in gateways:
        await gateway.aclose()


def assert_no_sms_text(exc: ProviderError) -> None:
    for shown in (str(exc), repr(exc), str(exc.message), str(exc.code)):
        assert SMS_TEXT not in shown
        assert "482913" not in shown


# --- the request ---------------------------------------------------------------------------------


async def test_submit_posts_the_documented_request_with_raw_credentials(make_gateway) -> None:
    gateway, recorder = make_gateway(envelope(200, OK))

    await gateway.submit(sms(validity_seconds=599, webhook_url="https://otp.example/webhooks/mf"))

    (request,) = recorder.requests
    assert request.method == "POST"
    assert request.url == "https://priority.example/v2.1/sms"
    assert request.headers["Authorization"] == "api-key-1"
    assert request.headers["Application-Key"] == "app-key-1"
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["Accept"] == "application/json"
    assert json.loads(request.content) == {
        "sender": "Acme",
        "message": SMS_TEXT,
        "phoneNumbers": ["+48601234567"],
        "validity": 9,
        "type": 0,
        "externalId": "ext-1",
        "webhookUrl": "https://otp.example/webhooks/mf",
    }


async def test_submit_leaves_webhook_url_out_when_the_service_has_none(make_gateway) -> None:
    gateway, recorder = make_gateway(envelope(200, OK))

    await gateway.submit(sms(webhook_url=None))

    assert "webhookUrl" not in json.loads(recorder.requests[0].content)


@pytest.mark.parametrize(
    "base_url",
    ["https://priority.example", "https://priority.example/", "https://priority.example//"],
)
async def test_base_url_with_or_without_a_trailing_slash_reaches_the_same_path(
    make_gateway, base_url: str
) -> None:
    gateway, recorder = make_gateway(envelope(200, OK), base_url=base_url)

    await gateway.submit(sms())

    assert recorder.requests[0].url.path == "/v2.1/sms"


async def test_base_url_with_a_path_keeps_that_path(make_gateway) -> None:
    gateway, recorder = make_gateway(envelope(200, OK), base_url="https://api.example/priority/")

    await gateway.submit(sms())

    assert recorder.requests[0].url.path == "/priority/v2.1/sms"


@pytest.mark.parametrize(("seconds", "minutes"), [(60, 1), (119, 1), (120, 2), (600, 10)])
async def test_validity_is_the_whole_minutes_left_never_more(
    make_gateway, seconds: int, minutes: int
) -> None:
    gateway, recorder = make_gateway(envelope(200, OK))

    await gateway.submit(sms(validity_seconds=seconds))

    assert json.loads(recorder.requests[0].content)["validity"] == minutes


@pytest.mark.parametrize("seconds", [59, 1, 0])
async def test_a_code_with_less_than_a_minute_left_is_not_sent(make_gateway, seconds: int) -> None:
    gateway, recorder = make_gateway(envelope(200, OK))

    with pytest.raises(ProviderUnavailable) as caught:
        await gateway.submit(sms(validity_seconds=seconds))

    assert caught.value.reason == "expired"
    assert recorder.requests == []


# --- the answers ---------------------------------------------------------------------------------


async def test_an_accepted_sms_returns_the_envelope_status_and_no_provider_id(make_gateway) -> None:
    gateway, _ = make_gateway(envelope(201, OK))

    receipt = await gateway.submit(sms())

    assert receipt == SubmitReceipt(provider_message_id=None, provider_status="200")


async def test_an_accepted_sms_without_meta_status_reports_the_first_data_status(
    make_gateway,
) -> None:
    gateway, _ = make_gateway(envelope(200, {"data": [{"status": "queued"}], "errors": []}))

    receipt = await gateway.submit(sms())

    assert receipt.provider_status == "queued"


async def test_an_accepted_sms_with_a_bare_envelope_has_no_status(make_gateway) -> None:
    gateway, _ = make_gateway(envelope(200, {}))

    assert await gateway.submit(sms()) == SubmitReceipt()


async def test_an_error_in_a_200_envelope_is_a_rejection_with_its_code_and_message(
    make_gateway,
) -> None:
    body = {
        "data": [],
        "errors": [
            {"title": "Invalid sender", "message": "Sender not verified", "code": "ERR_SENDER"},
            {"title": "Second", "message": "ignored", "code": "ERR_OTHER"},
        ],
        "meta": {"status": 200},
    }
    gateway, _ = make_gateway(envelope(200, body))

    with pytest.raises(ProviderRejected) as caught:
        await gateway.submit(sms())

    assert (caught.value.code, caught.value.message) == ("ERR_SENDER", "Sender not verified")
    assert_no_sms_text(caught.value)


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
async def test_a_4xx_answer_is_a_rejection_keeping_the_providers_code_and_message(
    make_gateway, status: int
) -> None:
    body = {"errors": [{"title": "Bad", "message": "Invalid credentials", "code": 1002}]}
    gateway, _ = make_gateway(envelope(status, body))

    with pytest.raises(ProviderRejected) as caught:
        await gateway.submit(sms())

    assert caught.value.reason == f"http_{status}"
    assert (caught.value.code, caught.value.message) == ("1002", "Invalid credentials")


@pytest.mark.parametrize("status", [429, 500, 502, 503])
async def test_429_and_5xx_answers_are_worth_a_retry(make_gateway, status: int) -> None:
    body = {"errors": [{"title": "Busy", "message": "Try later", "code": "BUSY"}]}
    gateway, _ = make_gateway(envelope(status, body))

    with pytest.raises(ProviderUnavailable) as caught:
        await gateway.submit(sms())

    assert caught.value.reason == f"http_{status}"
    assert (caught.value.code, caught.value.message) == ("BUSY", "Try later")


async def test_a_5xx_with_an_html_body_is_still_unavailable_without_details(make_gateway) -> None:
    gateway, _ = make_gateway(lambda request: httpx.Response(502, text="<html>Bad gateway</html>"))

    with pytest.raises(ProviderUnavailable) as caught:
        await gateway.submit(sms())

    assert (caught.value.reason, caught.value.code, caught.value.message) == (
        "http_502",
        None,
        None,
    )


@pytest.mark.parametrize("content", [b"<html>ok</html>", b"", b"[1, 2]", b'{"data": '])
async def test_a_2xx_that_is_not_an_envelope_is_retried_rather_than_dropped(
    make_gateway, content: bytes
) -> None:
    gateway, _ = make_gateway(lambda request: httpx.Response(200, content=content))

    with pytest.raises(ProviderUnavailable) as caught:
        await gateway.submit(sms())

    assert caught.value.reason == "malformed_response"


async def test_a_read_timeout_is_unavailable(make_gateway) -> None:
    def time_out(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("read timed out", request=request)

    gateway, _ = make_gateway(time_out)

    with pytest.raises(ProviderUnavailable) as caught:
        await gateway.submit(sms())

    assert caught.value.reason == "timeout"
    assert_no_sms_text(caught.value)


async def test_a_connection_error_is_unavailable(make_gateway) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    gateway, _ = make_gateway(refuse)

    with pytest.raises(ProviderUnavailable) as caught:
        await gateway.submit(sms())

    assert caught.value.reason == "connection_error"


async def test_a_provider_slower_than_the_total_timeout_is_abandoned(make_gateway) -> None:
    async def stall(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(5)
        return httpx.Response(200, json=OK)

    gateway, _ = make_gateway(stall, total_timeout=0.05)

    async with asyncio.timeout(2):
        with pytest.raises(ProviderUnavailable) as caught:
            await gateway.submit(sms())

    assert caught.value.reason == "timeout"


async def test_a_provider_echoing_the_sms_or_the_number_has_them_redacted(make_gateway) -> None:
    body = {"errors": [{"message": f"Bad text '{SMS_TEXT}' to +48601234567", "code": "E1"}]}
    gateway, _ = make_gateway(envelope(400, body))

    with pytest.raises(ProviderRejected) as caught:
        await gateway.submit(sms())

    assert_no_sms_text(caught.value)
    assert "601234567" not in str(caught.value.message)
    assert caught.value.code == "E1"


async def test_the_gateway_repr_shows_no_credentials(make_gateway) -> None:
    gateway, _ = make_gateway(envelope(200, OK))

    assert "api-key-1" not in repr(gateway)
    assert "app-key-1" not in repr(gateway)


async def test_closing_the_gateway_closes_its_client() -> None:
    client = httpx.AsyncClient(transport=httpx.MockTransport(envelope(200, OK)))
    gateway = MessageFlowGateway(
        client, base_url="https://x.example", api_key="k", app_key="a", total_timeout=1
    )

    await gateway.aclose()

    assert client.is_closed
