"""The provider circuit breaker: opens after a run of failures, probes, closes on success."""

from __future__ import annotations

import pytest

from otpservice import metrics
from otpservice.errors import ProviderRejected, ProviderUnavailable
from otpservice.providers.base import SmsMessage, SubmitReceipt
from otpservice.providers.breaker import CircuitBreaker, CircuitState

MESSAGE = SmsMessage(to="+48601234567", text="x", sender="s", external_id="e", validity_seconds=60)


class Scripted:
    """A gateway answering from a script: 'ok', 'down' or 'reject'."""

    name = "scripted"
    min_validity_seconds = 1

    def __init__(self, *answers: str) -> None:
        self.answers = list(answers)
        self.calls = 0

    async def submit(self, message: SmsMessage) -> SubmitReceipt:
        self.calls += 1
        answer = self.answers.pop(0) if self.answers else "ok"
        if answer == "down":
            raise ProviderUnavailable("http_503")
        if answer == "reject":
            raise ProviderRejected("http_400")
        return SubmitReceipt()

    async def aclose(self) -> None:
        return None


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _gauge(provider: str) -> float:
    return metrics.CIRCUIT_STATE.labels(provider)._value.get()


async def test_the_circuit_opens_after_the_threshold_and_stops_calling() -> None:
    gateway = Scripted("down", "down", "down")
    breaker = CircuitBreaker(gateway, failure_threshold=3, reset_after=10, clock=Clock())
    for _ in range(3):
        with pytest.raises(ProviderUnavailable):
            await breaker.submit(MESSAGE)
    assert breaker.state is CircuitState.OPEN
    assert _gauge("scripted") == 2
    with pytest.raises(ProviderUnavailable, match="circuit_open"):
        await breaker.submit(MESSAGE)
    assert gateway.calls == 3


async def test_after_the_reset_time_one_probe_goes_through_and_success_closes() -> None:
    clock = Clock()
    gateway = Scripted("down", "down")
    breaker = CircuitBreaker(gateway, failure_threshold=2, reset_after=10, clock=clock)
    for _ in range(2):
        with pytest.raises(ProviderUnavailable):
            await breaker.submit(MESSAGE)
    clock.now = 10.0
    assert breaker.state is CircuitState.HALF_OPEN
    await breaker.submit(MESSAGE)
    assert breaker.state is CircuitState.CLOSED
    assert _gauge("scripted") == 0
    assert gateway.calls == 3


async def test_a_failed_probe_opens_the_circuit_again() -> None:
    clock = Clock()
    gateway = Scripted("down", "down")
    breaker = CircuitBreaker(gateway, failure_threshold=1, reset_after=5, clock=clock)
    with pytest.raises(ProviderUnavailable):
        await breaker.submit(MESSAGE)
    clock.now = 5.0
    with pytest.raises(ProviderUnavailable, match="http_503"):
        await breaker.submit(MESSAGE)
    assert breaker.state is CircuitState.OPEN
    clock.now = 9.0
    with pytest.raises(ProviderUnavailable, match="circuit_open"):
        await breaker.submit(MESSAGE)
    assert gateway.calls == 2


async def test_rejections_mean_the_provider_is_up_and_reset_the_count() -> None:
    gateway = Scripted("down", "reject", "down", "ok")
    breaker = CircuitBreaker(gateway, failure_threshold=2, reset_after=10, clock=Clock())
    with pytest.raises(ProviderUnavailable):
        await breaker.submit(MESSAGE)
    with pytest.raises(ProviderRejected):
        await breaker.submit(MESSAGE)
    with pytest.raises(ProviderUnavailable):
        await breaker.submit(MESSAGE)
    assert breaker.state is CircuitState.CLOSED
    await breaker.submit(MESSAGE)
    assert gateway.calls == 4
