"""The Flowstates gateway against a mocked provider: the request it sends, every answer it reads."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
import pytest

from otpservice.errors import ProviderError, ProviderRejected, ProviderUnavailable
from otpservice.providers.base import SmsMessage, SubmitReceipt
from otpservice.providers.flowstates import FlowstatesGateway

SMS_TEXT = "Your Acme code is 482913"
Handler = Callable[[httpx.Request], httpx.Response | Awaitable[httpx.Response]]


def sms(validity_seconds: int = 600) -> SmsMessage:
    return SmsMessage(
        to="+48601234567",
        text=SMS_TEXT,
        sender="Acme",
        external_id="ext-1",
        validity_seconds=validity_seconds,
        webhook_url="https://otp.example/webhooks/flowstates",
    )


def answer(status: int, body: object) -> Handler:
    return lambda request: httpx.Response(status, json=body)


class Recorder:
    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.requests: list[httpx.Request] = []

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        result = self.handler(request)
        return await result if isinstance(result, Awaitable) else result


@pytest.fixture
async def make_gateway() -> AsyncIterator[Callable[..., tuple[FlowstatesGateway, Recorder]]]:
    gateways: list[FlowstatesGateway] = []

    def build(
        handler: Handler,
        *,
        base_url: str = "https://api.flowstates.example",
        total_timeout: float = 5,
    ) -> tuple[FlowstatesGateway, Recorder]:
        recorder = Recorder(handler)
        gateway = FlowstatesGateway(
            httpx.AsyncClient(transport=httpx.MockTransport(recorder)),
            base_url=base_url,
            api_key="fs-key-1",
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


async def test_submit_posts_to_messages_send_with_the_api_key_scheme(make_gateway) -> None:
    gateway, recorder = make_gateway(answer(201, {"id": "fs-1"}))

    await gateway.submit(sms())

    (request,) = recorder.requests
    assert request.method == "POST"
    assert request.url == "https://api.flowstates.example/messages/send"
    assert request.headers["Authorization"] == "X-Api-key fs-key-1"
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["Accept"] == "application/json"
    assert json.loads(request.content) == {
        "to": "+48601234567",
        "message": SMS_TEXT,
        "sender": "Acme",
    }


@pytest.mark.parametrize("base_url", ["https://fs.example/api", "https://fs.example/api/"])
async def test_base_url_with_or_without_a_trailing_slash_reaches_the_same_path(
    make_gateway, base_url: str
) -> None:
    gateway, recorder = make_gateway(answer(200, {"id": "fs-1"}), base_url=base_url)

    await gateway.submit(sms())

    assert recorder.requests[0].url.path == "/api/messages/send"


async def test_a_code_with_seconds_left_is_still_sent_since_flowstates_takes_no_validity(
    make_gateway,
) -> None:
    gateway, recorder = make_gateway(answer(200, {"id": "fs-1"}))

    await gateway.submit(sms(validity_seconds=30))

    assert len(recorder.requests) == 1


# --- the answers ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        {"id": "fs-42"},
        {"message_id": "fs-42"},
        {"messageId": "fs-42"},
        {"data": {"id": "fs-42"}},
        {"data": [{"messageId": "fs-42"}, {"messageId": "fs-43"}]},
        [{"id": "fs-42"}],
    ],
)
@pytest.mark.parametrize("status", [200, 201])
async def test_an_accepted_sms_returns_flowstates_message_id(
    make_gateway, body: object, status: int
) -> None:
    gateway, _ = make_gateway(answer(status, body))

    receipt = await gateway.submit(sms())

    assert receipt.provider_message_id == "fs-42"


async def test_a_numeric_message_id_is_kept_as_text(make_gateway) -> None:
    gateway, _ = make_gateway(answer(200, {"id": 4200, "status": "queued"}))

    assert await gateway.submit(sms()) == SubmitReceipt(
        provider_message_id="4200", provider_status="queued"
    )


@pytest.mark.parametrize("body", [{}, {"id": ""}, {"id": None}, {"data": []}, {"ok": True}])
async def test_an_accepted_sms_without_an_id_is_still_accepted(make_gateway, body: object) -> None:
    gateway, _ = make_gateway(answer(200, body))

    assert (await gateway.submit(sms())).provider_message_id is None


async def test_an_empty_200_is_accepted_without_an_id(make_gateway) -> None:
    gateway, _ = make_gateway(lambda request: httpx.Response(200))

    assert await gateway.submit(sms()) == SubmitReceipt()


@pytest.mark.parametrize("status", [400, 401, 404])
async def test_400_401_404_are_rejections_keeping_code_and_message(
    make_gateway, status: int
) -> None:
    gateway, _ = make_gateway(answer(status, {"code": "INVALID_TO", "message": "Bad number"}))

    with pytest.raises(ProviderRejected) as caught:
        await gateway.submit(sms())

    assert caught.value.reason == f"http_{status}"
    assert (caught.value.code, caught.value.message) == ("INVALID_TO", "Bad number")


@pytest.mark.parametrize(
    ("body", "details"),
    [
        ({"error": {"code": 17, "message": "Unauthorized"}}, ("17", "Unauthorized")),
        ({"error": "Unauthorized"}, (None, "Unauthorized")),
        ({"errors": [{"code": "X", "detail": "No route"}]}, ("X", "No route")),
        ({"unexpected": 1}, (None, None)),
    ],
)
async def test_error_details_are_read_from_the_usual_error_shapes(
    make_gateway, body: object, details: tuple[str | None, str | None]
) -> None:
    gateway, _ = make_gateway(answer(401, body))

    with pytest.raises(ProviderRejected) as caught:
        await gateway.submit(sms())

    assert (caught.value.code, caught.value.message) == details


@pytest.mark.parametrize("status", [429, 500, 502, 503])
async def test_429_and_5xx_answers_are_worth_a_retry(make_gateway, status: int) -> None:
    gateway, _ = make_gateway(answer(status, {"code": "BUSY", "message": "Overloaded"}))

    with pytest.raises(ProviderUnavailable) as caught:
        await gateway.submit(sms())

    assert caught.value.reason == f"http_{status}"
    assert (caught.value.code, caught.value.message) == ("BUSY", "Overloaded")


async def test_a_200_that_is_not_json_is_retried_rather_than_dropped(make_gateway) -> None:
    gateway, _ = make_gateway(lambda request: httpx.Response(200, text="<html>Welcome</html>"))

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
    assert_no_sms_text(caught.value)


async def test_a_provider_slower_than_the_total_timeout_is_abandoned(make_gateway) -> None:
    async def stall(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(5)
        return httpx.Response(200, json={"id": "late"})

    gateway, _ = make_gateway(stall, total_timeout=0.05)

    async with asyncio.timeout(2):
        with pytest.raises(ProviderUnavailable) as caught:
            await gateway.submit(sms())

    assert caught.value.reason == "timeout"


async def test_a_provider_echoing_the_sms_has_it_redacted(make_gateway) -> None:
    gateway, _ = make_gateway(answer(400, {"message": f"Text too long: {SMS_TEXT}"}))

    with pytest.raises(ProviderRejected) as caught:
        await gateway.submit(sms())

    assert_no_sms_text(caught.value)


async def test_the_gateway_repr_shows_no_api_key(make_gateway) -> None:
    gateway, _ = make_gateway(answer(200, {}))

    assert "fs-key-1" not in repr(gateway)
