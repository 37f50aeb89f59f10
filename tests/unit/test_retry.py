"""Submitting until the deadline: retries, backoff, what is observed, and never a late SMS."""

from __future__ import annotations

import random

import pytest

from otpservice.errors import ProviderRejected, ProviderUnavailable
from otpservice.providers.base import SmsMessage, SubmitReceipt
from otpservice.providers.retry import Backoff, submit_until_deadline

MESSAGE = SmsMessage(
    to="+48601234567", text="code 482913", sender="Acme", external_id="ext-1", validity_seconds=600
)
ACCEPTED = SubmitReceipt(provider_message_id="p-1", provider_status="queued")


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


class ScriptedGateway:
    """Answers each attempt from a script; each attempt takes `call_seconds` of fake time."""

    name = "fake"
    min_validity_seconds = 1

    def __init__(
        self,
        clock: FakeClock,
        script: list[SubmitReceipt | Exception],
        call_seconds: float = 0.5,
    ) -> None:
        self.clock = clock
        self.script = script
        self.call_seconds = call_seconds
        self.sent: list[tuple[float, SmsMessage]] = []

    async def submit(self, message: SmsMessage) -> SubmitReceipt:
        self.sent.append((self.clock.now, message))
        self.clock.now += self.call_seconds
        outcome = self.script.pop(0) if len(self.script) > 1 else self.script[0]
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    async def aclose(self) -> None:
        return None


class Observed(list[tuple[str, str, float]]):
    def __call__(self, provider: str, outcome: str, seconds: float) -> None:
        self.append((provider, outcome, seconds))


async def submit(
    gateway: ScriptedGateway, clock: FakeClock, observed: Observed, *, lifetime: float = 600
) -> SubmitReceipt:
    return await submit_until_deadline(
        gateway,
        MESSAGE,
        deadline=clock.now + lifetime,
        clock=clock,
        sleep=clock.sleep,
        rng=random.Random(7),
        observe=observed,
    )


async def test_an_sms_accepted_at_once_is_observed_once_as_accepted() -> None:
    clock, observed = FakeClock(), Observed()
    gateway = ScriptedGateway(clock, [ACCEPTED])

    assert await submit(gateway, clock, observed) == ACCEPTED

    assert observed == [("fake", "accepted", 0.5)]
    assert clock.sleeps == []


async def test_a_5xx_then_success_delivers_and_observes_each_attempt_once() -> None:
    clock, observed = FakeClock(), Observed()
    busy = ProviderUnavailable("http_503")
    gateway = ScriptedGateway(clock, [busy, busy, ACCEPTED])

    assert await submit(gateway, clock, observed) == ACCEPTED

    assert [outcome for _, outcome, _ in observed] == ["unavailable", "unavailable", "accepted"]
    assert all(seconds == 0.5 for _, _, seconds in observed)
    assert len(gateway.sent) == 3
    assert len(clock.sleeps) == 2


async def test_a_rejection_is_never_retried() -> None:
    clock, observed = FakeClock(), Observed()
    gateway = ScriptedGateway(clock, [ProviderRejected("http_400", code="E1"), ACCEPTED])

    with pytest.raises(ProviderRejected) as caught:
        await submit(gateway, clock, observed)

    assert caught.value.code == "E1"
    assert len(gateway.sent) == 1
    assert observed == [("fake", "rejected", 0.5)]
    assert clock.sleeps == []


async def test_each_attempt_carries_the_codes_remaining_lifetime() -> None:
    clock, observed = FakeClock(), Observed()
    busy = ProviderUnavailable("timeout")
    gateway = ScriptedGateway(clock, [busy, busy, ACCEPTED], call_seconds=3.0)
    deadline = clock.now + 600.9

    await submit_until_deadline(
        gateway,
        MESSAGE,
        deadline=deadline,
        clock=clock,
        sleep=clock.sleep,
        rng=random.Random(7),
        observe=observed,
    )

    for sent_at, message in gateway.sent:
        assert message.validity_seconds == int(deadline - sent_at)
        assert message.external_id == MESSAGE.external_id
        assert message.text == MESSAGE.text
    validities = [message.validity_seconds for _, message in gateway.sent]
    assert validities == sorted(validities, reverse=True)
    assert validities[0] == 600
    assert validities[-1] <= 600 - 2 * 3  # two 3 s attempts have gone by, plus the pauses


async def test_a_provider_down_until_the_deadline_gets_no_attempt_or_sleep_past_it() -> None:
    clock, observed = FakeClock(), Observed()
    gateway = ScriptedGateway(clock, [ProviderUnavailable("http_502", code="DOWN")])
    deadline = clock.now + 30

    with pytest.raises(ProviderUnavailable) as caught:
        await submit_until_deadline(
            gateway,
            MESSAGE,
            deadline=deadline,
            clock=clock,
            sleep=clock.sleep,
            rng=random.Random(7),
            observe=observed,
        )

    # The last provider answer, not a made-up one: the lane counts it as failed, not expired.
    assert (caught.value.reason, caught.value.code) == ("http_502", "DOWN")
    assert len(gateway.sent) > 5
    assert all(sent_at < deadline for sent_at, _ in gateway.sent)
    assert all(message.validity_seconds >= 1 for _, message in gateway.sent)
    assert clock.now <= deadline
    assert len(observed) == len(gateway.sent)
    assert {outcome for _, outcome, _ in observed} == {"unavailable"}


async def test_a_deadline_already_passed_sends_nothing_and_says_expired() -> None:
    clock, observed = FakeClock(), Observed()
    gateway = ScriptedGateway(clock, [ACCEPTED])

    with pytest.raises(ProviderUnavailable) as caught:
        await submit(gateway, clock, observed, lifetime=-1)

    assert caught.value.reason == "expired"
    assert gateway.sent == []
    assert observed == []


async def test_less_than_a_second_left_counts_as_expired() -> None:
    clock, observed = FakeClock(), Observed()
    gateway = ScriptedGateway(clock, [ACCEPTED])

    with pytest.raises(ProviderUnavailable) as caught:
        await submit(gateway, clock, observed, lifetime=0.9)

    assert caught.value.reason == "expired"
    assert gateway.sent == []


async def test_a_failure_whose_backoff_would_cross_the_deadline_gives_up_without_sleeping() -> None:
    clock, observed = FakeClock(), Observed()
    gateway = ScriptedGateway(clock, [ProviderUnavailable("timeout"), ACCEPTED], call_seconds=1.9)

    # 0.1 s are left after the attempt; the longest pause (0.25 s) would end past the deadline.
    class AlwaysMax(random.Random):
        def uniform(self, a: float, b: float) -> float:
            return b

    with pytest.raises(ProviderUnavailable) as caught:
        await submit_until_deadline(
            gateway,
            MESSAGE,
            deadline=clock.now + 2.0,
            clock=clock,
            sleep=clock.sleep,
            rng=AlwaysMax(),
            observe=observed,
        )

    assert caught.value.reason == "timeout"
    assert len(gateway.sent) == 1
    assert clock.sleeps == []


async def test_an_adapter_bug_propagates_unretried_but_is_still_observed() -> None:
    clock, observed = FakeClock(), Observed()
    gateway = ScriptedGateway(clock, [KeyError("oops"), ACCEPTED])

    with pytest.raises(KeyError):
        await submit(gateway, clock, observed)

    assert len(gateway.sent) == 1
    assert observed == [("fake", "unavailable", 0.5)]


@pytest.mark.parametrize("retry", range(12))
def test_backoff_jitter_stays_between_zero_and_the_capped_exponential(retry: int) -> None:
    backoff = Backoff(base_delay=0.25, max_delay=5.0)
    rng = random.Random(retry)
    cap = min(5.0, 0.25 * 2**retry)

    delays = [backoff.delay(retry, rng) for _ in range(500)]

    assert all(0 <= delay <= cap for delay in delays)
    # Full jitter really spreads: the picks cover most of the range, not one point.
    assert max(delays) - min(delays) > cap * 0.8


def test_backoff_survives_absurd_retry_counts() -> None:
    assert 0 <= Backoff().delay(10_000, random.Random(1)) <= 5.0


async def test_sleeps_between_attempts_follow_the_capped_backoff() -> None:
    clock, observed = FakeClock(), Observed()
    gateway = ScriptedGateway(clock, [ProviderUnavailable("http_500")] * 10 + [ACCEPTED])

    await submit(gateway, clock, observed)

    assert len(clock.sleeps) == 10
    for retry, pause in enumerate(clock.sleeps):
        assert 0 <= pause <= min(5.0, 0.25 * 2**retry)


async def test_less_left_than_the_provider_can_carry_sends_nothing_and_says_expired() -> None:
    """MessageFlow counts validity in minutes: 59 s left is expired for it, and no call is made
    (so nothing counts against its circuit breaker either)."""
    clock, observed = FakeClock(), Observed()
    gateway = ScriptedGateway(clock, [ACCEPTED])
    gateway.min_validity_seconds = 60

    with pytest.raises(ProviderUnavailable) as caught:
        await submit(gateway, clock, observed, lifetime=59.5)

    assert caught.value.reason == "expired"
    assert gateway.sent == []
    assert observed == []
