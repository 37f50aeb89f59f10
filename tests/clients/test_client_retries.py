"""When the client repeats a call by itself: after a 503 (service_unavailable or overloaded),
waiting what Retry-After says, within max_retries and a 30 s budget; after a transport error
only when repeating is safe. Never after a 429. Sleeps are recorded, not slept."""

from __future__ import annotations

import httpx
import pytest
from otpservice_client import (
    AsyncClient,
    Client,
    Overloaded,
    ResendTooSoon,
    ServiceUnavailable,
    TooManyRequests,
    TransportError,
)

from tests.clients.fakes import VERIFICATION_ID, Script, check_json, problem, verification_json

BASE_URL = "http://otp.test"


def ok(status: int = 200) -> httpx.Response:
    return httpx.Response(status, json=verification_json())


def client_for(script: Script, sleeps: list[float], **options) -> Client:
    return Client(BASE_URL, "key", transport=script.transport, sleep=sleeps.append, **options)


@pytest.mark.parametrize("code", ["service_unavailable", "overloaded"])
def test_a_503_is_repeated_after_its_retry_after(code) -> None:
    sleeps: list[float] = []
    script = Script(problem(503, code, retry_after=2), problem(503, code, retry_after=1), ok())
    with client_for(script, sleeps) as otp:
        verification = otp.resend(VERIFICATION_ID)
    assert verification.id == VERIFICATION_ID
    assert sleeps == [2, 1]
    assert len(script.requests) == 3


def test_every_route_is_repeated_after_a_503() -> None:
    sleeps: list[float] = []
    shed = problem(503, "overloaded", retry_after=1)
    script = Script(
        shed, ok(201),
        shed, httpx.Response(200, json=check_json()),
        shed, ok(),
        shed, ok(),
        shed, ok(),
    )  # fmt: skip
    with client_for(script, sleeps) as otp:
        otp.start("+48601234567")
        otp.verify("123456", id=VERIFICATION_ID)
        otp.resend(VERIFICATION_ID)
        otp.cancel(VERIFICATION_ID)
        otp.get(VERIFICATION_ID)
    assert sleeps == [1] * 5


def test_after_max_retries_the_503_is_raised_with_its_retry_after() -> None:
    sleeps: list[float] = []
    script = Script(*(problem(503, "service_unavailable", retry_after=1) for _ in range(3)))
    with (
        client_for(script, sleeps, max_retries=2) as otp,
        pytest.raises(ServiceUnavailable) as caught,
    ):
        otp.get(VERIFICATION_ID)
    assert caught.value.retry_after == 1
    assert sleeps == [1, 1]
    assert len(script.requests) == 3


def test_max_retries_zero_never_repeats() -> None:
    sleeps: list[float] = []
    script = Script(problem(503, "overloaded", retry_after=1))
    with client_for(script, sleeps, max_retries=0) as otp, pytest.raises(Overloaded):
        otp.get(VERIFICATION_ID)
    assert sleeps == []


def test_a_retry_after_past_the_wait_budget_is_not_waited_for() -> None:
    sleeps: list[float] = []
    script = Script(problem(503, "service_unavailable", retry_after=31))
    with client_for(script, sleeps) as otp, pytest.raises(ServiceUnavailable) as caught:
        otp.get(VERIFICATION_ID)
    assert caught.value.retry_after == 31
    assert sleeps == []


def test_the_wait_budget_counts_every_wait_of_one_call() -> None:
    sleeps: list[float] = []
    script = Script(*(problem(503, "overloaded", retry_after=3) for _ in range(2)))
    with (
        client_for(script, sleeps, max_retries=5, max_retry_wait=5) as otp,
        pytest.raises(Overloaded),
    ):
        otp.get(VERIFICATION_ID)
    assert sleeps == [3]


def test_a_503_without_retry_after_is_repeated_after_a_second() -> None:
    sleeps: list[float] = []
    script = Script(httpx.Response(503, text="upstream unavailable"), ok())
    with client_for(script, sleeps) as otp:
        otp.get(VERIFICATION_ID)
    assert sleeps == [1]


@pytest.mark.parametrize("code", ["resend_too_soon", "rate_limited", "max_sends_reached"])
def test_a_429_is_never_repeated(code) -> None:
    sleeps: list[float] = []
    script = Script(problem(429, code, retry_after=1), ok())
    with client_for(script, sleeps) as otp, pytest.raises(TooManyRequests) as caught:
        otp.resend(VERIFICATION_ID)
    assert caught.value.status == 429
    assert caught.value.retry_after == 1
    assert sleeps == []
    assert len(script.requests) == 1


def test_a_read_is_repeated_after_any_transport_error() -> None:
    sleeps: list[float] = []
    script = Script(httpx.ReadTimeout("timed out"), httpx.RemoteProtocolError("reset"), ok())
    with client_for(script, sleeps) as otp:
        otp.get(VERIFICATION_ID)
    assert len(script.requests) == 3
    assert 0.25 <= sleeps[0] <= 0.5
    assert 0.5 <= sleeps[1] <= 1.0


def test_a_start_without_idempotency_key_is_not_repeated_once_it_may_have_arrived() -> None:
    sleeps: list[float] = []
    script = Script(httpx.ReadTimeout("timed out"), ok(201))
    with client_for(script, sleeps) as otp, pytest.raises(TransportError) as caught:
        otp.start("+48601234567")
    assert isinstance(caught.value.__cause__, httpx.ReadTimeout)
    assert len(script.requests) == 1
    assert sleeps == []


def test_a_start_with_an_idempotency_key_is_repeated_with_the_same_key() -> None:
    sleeps: list[float] = []
    script = Script(httpx.ReadError("connection reset"), ok(201))
    with client_for(script, sleeps) as otp:
        verification = otp.start("+48601234567", idempotency_key=True)
    assert verification.id == VERIFICATION_ID
    first, second = script.requests
    assert first.headers["idempotency-key"] == second.headers["idempotency-key"]
    assert first.content == second.content
    assert len(sleeps) == 1


@pytest.mark.parametrize("exc", [httpx.ReadTimeout("timed out"), httpx.WriteError("broken pipe")])
def test_checks_resends_and_cancels_are_not_repeated_once_they_may_have_arrived(exc) -> None:
    sleeps: list[float] = []
    script = Script(exc, exc, exc)
    with client_for(script, sleeps) as otp:
        for call in (
            lambda: otp.verify("123456", id=VERIFICATION_ID),
            lambda: otp.resend(VERIFICATION_ID),
            lambda: otp.cancel(VERIFICATION_ID),
        ):
            with pytest.raises(TransportError):
                call()
    assert len(script.requests) == 3
    assert sleeps == []


@pytest.mark.parametrize(
    "exc",
    [httpx.ConnectError("refused"), httpx.ConnectTimeout("timed out"), httpx.PoolTimeout("full")],
)
def test_any_call_is_repeated_when_it_never_left(exc) -> None:
    sleeps: list[float] = []
    script = Script(exc, httpx.Response(200, json=check_json()), exc, ok(201))
    with client_for(script, sleeps) as otp:
        assert otp.verify("123456", id=VERIFICATION_ID).valid is True
        otp.start("+48601234567")
    assert len(script.requests) == 4
    assert len(sleeps) == 2


def test_transport_errors_stop_after_max_retries() -> None:
    sleeps: list[float] = []
    script = Script(*(httpx.ConnectError("refused") for _ in range(3)))
    with client_for(script, sleeps, max_retries=2) as otp, pytest.raises(TransportError):
        otp.get(VERIFICATION_ID)
    assert len(script.requests) == 3
    assert len(sleeps) == 2


class AsyncSleeps(list[float]):
    async def __call__(self, seconds: float) -> None:
        self.append(seconds)


async def test_the_asyncio_client_repeats_a_503_after_retry_after_and_never_a_429() -> None:
    sleeps = AsyncSleeps()
    script = Script(
        problem(503, "overloaded", retry_after=2),
        ok(),
        problem(429, "resend_too_soon", retry_after=9),
    )
    async with AsyncClient(BASE_URL, "key", transport=script.transport, sleep=sleeps) as otp:
        await otp.get(VERIFICATION_ID)
        with pytest.raises(ResendTooSoon) as caught:
            await otp.resend(VERIFICATION_ID)
    assert caught.value.retry_after == 9
    assert sleeps == [2]
    assert len(script.requests) == 3


async def test_the_asyncio_client_repeats_a_keyed_start_but_not_an_unkeyed_one() -> None:
    sleeps = AsyncSleeps()
    script = Script(httpx.ReadTimeout("t"), ok(201), httpx.ReadTimeout("t"))
    async with AsyncClient(BASE_URL, "key", transport=script.transport, sleep=sleeps) as otp:
        await otp.start("+48601234567", idempotency_key="k")
        with pytest.raises(TransportError):
            await otp.start("+48601234567")
    assert [r.headers.get("idempotency-key") for r in script.requests] == ["k", "k", None]
    assert len(sleeps) == 1


@pytest.mark.parametrize("options", [{"max_retries": -1}, {"max_retry_wait": -1}])
def test_negative_retry_settings_are_refused(options) -> None:
    with pytest.raises(ValueError, match="0 or more"):
        Client(BASE_URL, "key", **options)
