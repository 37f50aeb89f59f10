"""Provider failures reach the operator's log at WARNING, a few lines per outage (not one per
attempt), and never with a phone number, the SMS text or a code."""

from __future__ import annotations

import logging
import random

import httpx
import pytest

from otpservice.errors import ProviderRejected, ProviderUnavailable
from otpservice.providers.base import SmsMessage, SubmitReceipt
from otpservice.providers.failures import ProviderFailureLog
from otpservice.providers.messageflow import MessageFlowGateway
from otpservice.providers.retry import submit_until_deadline

NUMBER = "+48601234567"
CODE = "735194"
MESSAGE = SmsMessage(
    to=NUMBER,
    text=f"Your Acme code is {CODE}. Valid for 10 min.",
    sender="Acme",
    external_id="ref-1",
    validity_seconds=600,
)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds


class DownUntil:
    """A provider that answers 503 until `clock` reaches `back_at`."""

    name = "messageflow"
    min_validity_seconds = 1

    def __init__(self, clock: Clock, back_at: float) -> None:
        self.clock = clock
        self.back_at = back_at
        self.attempts = 0

    async def submit(self, message: SmsMessage) -> SubmitReceipt:
        self.attempts += 1
        self.clock.now += 0.05
        if self.clock.now < self.back_at:
            raise ProviderUnavailable("http_503", code="E503", message="Service Unavailable")
        return SubmitReceipt(provider_status="accepted")

    async def aclose(self) -> None:
        return None


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


async def test_a_provider_down_for_40_seconds_logs_a_line_every_10_seconds_then_its_recovery(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = Clock()
    gateway = DownUntil(clock, back_at=clock.now + 40)
    failures = ProviderFailureLog(clock=clock)
    caplog.set_level(logging.WARNING)
    receipt = await submit_until_deadline(
        gateway,
        MESSAGE,
        deadline=clock.now + 600,
        clock=clock,
        sleep=clock.sleep,
        rng=random.Random(7),
        observe=lambda *_: None,
        max_delay=0.5,
        failures=failures,
    )
    assert receipt.provider_status == "accepted"
    lines = warnings_of(caplog)
    assert gateway.attempts > 40, "the outage must have been many attempts"
    assert 4 <= len(lines) <= 6, lines
    assert (
        lines[0]
        == "provider messageflow is unavailable: http_503, code E503, 'Service Unavailable'"
    )
    held_back = [line for line in lines[1:-1] if "more failed attempts" in line]
    assert held_back == lines[1:-1], "each later line counts the attempts not logged"
    assert lines[-1].startswith(
        f"provider messageflow accepts SMS again after {gateway.attempts - 1} unavailable"
    )


async def test_a_rejection_is_logged_at_warning_without_the_number_the_text_or_the_code(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Providers echo what they refuse: the number and the text, code included.
    body = {"errors": [{"code": 1337, "message": f"Invalid recipient {NUMBER}: '{MESSAGE.text}'"}]}
    client = httpx.AsyncClient(
        transport=httpx.MockTransport(lambda _: httpx.Response(400, json=body))
    )
    gateway = MessageFlowGateway(
        client, base_url="https://mf.example", api_key="k", app_key="a", total_timeout=1
    )
    clock = Clock()
    caplog.set_level(logging.DEBUG)
    with pytest.raises(ProviderRejected):
        await submit_until_deadline(
            gateway,
            MESSAGE,
            deadline=clock.now + 600,
            clock=clock,
            sleep=clock.sleep,
            rng=random.Random(1),
            observe=lambda *_: None,
            failures=ProviderFailureLog(clock=clock),
        )
    await gateway.aclose()
    [line] = warnings_of(caplog)
    assert line.startswith("provider messageflow rejected an SMS: http_400, code 1337")
    everything = "\n".join(r.getMessage() for r in caplog.records)
    for secret in (NUMBER, NUMBER[3:], CODE, MESSAGE.text):
        assert secret not in everything


def test_lines_are_limited_per_provider_not_across_providers(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = Clock()
    failures = ProviderFailureLog(clock=clock)
    caplog.set_level(logging.WARNING)
    for _ in range(100):
        failures.failed("messageflow", ProviderUnavailable("timeout"))
        failures.failed("flowstates", ProviderUnavailable("connection_error"))
        clock.now += 0.01
    assert warnings_of(caplog) == [
        "provider messageflow is unavailable: timeout",
        "provider flowstates is unavailable: connection_error",
    ]
    clock.now += 10
    failures.failed("messageflow", ProviderUnavailable("timeout"))
    assert warnings_of(caplog)[-1] == (
        "provider messageflow is unavailable: timeout (99 more failed attempts since the last"
        " line, not logged one by one)"
    )


def test_a_recovery_is_told_at_once_and_a_flapping_provider_stays_quiet(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = Clock()
    failures = ProviderFailureLog(clock=clock)
    caplog.set_level(logging.WARNING)
    failures.failed("messageflow", ProviderUnavailable("timeout"))
    clock.now += 1
    failures.accepted("messageflow")
    assert warnings_of(caplog)[-1] == (
        "provider messageflow accepts SMS again after 1 unavailable attempts"
    )
    # Every other attempt fails for 9 s: held back, counted in the next line.
    for _ in range(90):
        clock.now += 0.05
        failures.failed("messageflow", ProviderUnavailable("timeout"))
        clock.now += 0.05
        failures.accepted("messageflow")
    assert len(warnings_of(caplog)) == 2
    clock.now += 2
    failures.failed("messageflow", ProviderUnavailable("timeout"))
    assert warnings_of(caplog)[-1].endswith(
        "(90 more failed attempts since the last line, not logged one by one)"
    )


def test_a_rejection_is_no_outage(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    failures = ProviderFailureLog(clock=clock)
    caplog.set_level(logging.WARNING)
    failures.failed("messageflow", ProviderRejected("http_400", code="21"))
    failures.accepted("messageflow")
    assert warnings_of(caplog) == ["provider messageflow rejected an SMS: http_400, code 21"]
