"""The provider failing (500s) or hanging: codes wait in the lane and go out once it recovers,
never after they expired; a hanging provider opens the circuit and never slows a start."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.faults.api import (
    BRIEF_HEADERS,
    PROVIDER,
    accepted_sms,
    client,
    epoch,
    reference,
    start,
    started,
    wait_until,
)
from tests.integration.conftest import metric_value
from tests.support.fake_provider import (
    ABANDONED,
    ACCEPTED,
    FAILED,
    HANG,
    NORMAL,
    FakeProvider,
    Inbox,
    failing,
)
from tests.support.processes import ServiceProcess

pytestmark = pytest.mark.faults

OUTAGE_SECONDS = 3.0
CLOCK_SLACK = 0.25  # between the service's and this process' reading of the same clock


async def test_codes_held_by_provider_errors_go_out_on_recovery_and_none_after_it_expired(
    inbox: Inbox,
    make_provider: Callable[[str], FakeProvider],
    launch: Callable[..., ServiceProcess],
) -> None:
    provider = make_provider("p")
    service = launch(
        "a",
        provider,
        OTP_PROVIDER_BREAKER_FAILURES="3",
        OTP_PROVIDER_BREAKER_RESET_SECONDS="0.5",
    )
    async with client(service.url) as http:
        # Control: a 61 s code can be sent, in its first second, while the provider works.
        control = await started(http, BRIEF_HEADERS)
        control_sms = await accepted_sms(inbox, control["id"], tenant="brief", timeout=5)
        assert control_sms.validity_minutes == 1

        provider.behave(failing(500))
        began = time.monotonic()
        # By SMS reference: what the provider sees.
        verifications: dict[str, dict[str, Any]] = {}
        lasting: list[str] = []  # 10-minute codes: valid long after the outage
        brief: list[str] = []  # 61 s codes: past sending (under a minute left) at recovery
        for _ in range(6):
            for ids, headers, tenant in ((lasting, None, "acme"), (brief, BRIEF_HEADERS, "brief")):
                body = await started(http, headers)
                verifications[reference(body["id"], tenant)] = body
                ids.append(reference(body["id"], tenant))
            await asyncio.sleep(0.2)
        await wait_until(
            "the provider to refuse sends", lambda: _outcomes(inbox, lasting) & {FAILED}
        )
        # Every brief code must be past its last sendable second before the provider recovers.
        await asyncio.sleep(max(OUTAGE_SECONDS - (time.monotonic() - began), 1.5))
        provider.behave(NORMAL)
        recovered_at = time.time()

        for ref in lasting:
            await wait_until(f"the SMS of {ref} accepted", lambda r=ref: inbox.accepted(r), 20)
        await wait_until("the lane to empty", lambda: _lane_depth_is(http, 0), timeout=15)

        for ref in lasting:
            accepted = inbox.accepted(ref)
            assert len(accepted) == 1, f"{ref} was accepted {len(accepted)} times"
            assert accepted[0].external_id == f"{ref}-1"
        late = [s for s in inbox.snapshot() if s.reference in brief]
        assert not [s for s in late if s.outcome == ACCEPTED], "a 61 s code sent after recovery"
        assert not [s for s in late if s.arrived >= recovered_at], "a brief code tried late"
        # No request ever reached the provider after (or claiming validity beyond) its code's
        # expiry; `expires_at` is truncated to the second.
        for sms in inbox.snapshot():
            if sms.reference == control_sms.reference:
                continue
            expires = epoch(verifications[sms.reference]["expires_at"]) + 1
            assert sms.validity_minutes >= 1, sms
            assert sms.arrived + 60 * sms.validity_minutes <= expires + CLOCK_SLACK, sms
        assert (
            await metric_value(
                http, "otp_sends_total", provider=PROVIDER, lane="priority", outcome="accepted"
            )
            == len(lasting) + 1
        )
        # The brief codes' sends are finished as failed: never accepted while their code lived.
        for ref in brief:
            read = await http.get(f"/otp/{verifications[ref]['id']}", headers=BRIEF_HEADERS)
            assert read.status_code == 200, read.text
            assert read.json()["delivery"]["status"] == "failed", read.json()["delivery"]


async def test_a_hanging_provider_opens_the_circuit_and_starts_stay_fast(
    inbox: Inbox,
    make_provider: Callable[[str], FakeProvider],
    launch: Callable[..., ServiceProcess],
) -> None:
    provider = make_provider("p")
    provider.behave(HANG)
    service = launch(
        "a",
        provider,
        OTP_PROVIDER_CONNECT_TIMEOUT_SECONDS="0.5",
        OTP_PROVIDER_READ_TIMEOUT_SECONDS="0.5",
        OTP_PROVIDER_TOTAL_TIMEOUT_SECONDS="1",
        OTP_PROVIDER_BREAKER_FAILURES="2",
        OTP_PROVIDER_BREAKER_RESET_SECONDS="60",
    )
    async with client(service.url) as http:
        for _ in range(4):
            await _fast_start(http)
        await wait_until("the circuit to open", lambda: _circuit_is(http, 2), timeout=10)

        # The timeouts fired: the service gave up on the held requests within its total timeout.
        gave_up = [s for s in inbox.snapshot() if s.outcome == ABANDONED]
        assert len(gave_up) >= 2, inbox.snapshot()
        for sms in gave_up:
            assert sms.finished is not None
            assert sms.finished - sms.arrived < 1.0 + 0.5, sms
        assert (
            await metric_value(
                http,
                "otp_provider_request_duration_seconds_count",
                provider=PROVIDER,
                outcome="unavailable",
            )
            >= 2
        )

        # With the circuit open: starts stay fast, their sends wait, the provider is left alone.
        calls = len(inbox.snapshot())
        for _ in range(4):
            await _fast_start(http)
        healthz = await _timed_get(http, "/healthz")
        assert healthz < 0.5, f"/healthz took {healthz:.2f} s"
        await wait_until(
            "the lane to hold all 8 sends", lambda: _lane_depth_at_least(http, 8), timeout=5
        )
        assert await metric_value(http, "otp_lane_oldest_pending_seconds") > 0
        assert await metric_value(http, "otp_provider_circuit_state", provider=PROVIDER) == 2
        assert len(inbox.snapshot()) == calls, "the open circuit let calls through"
        assert not inbox.accepted()


async def _fast_start(http: httpx.AsyncClient) -> None:
    began = time.monotonic()
    response = await start(http)
    took = time.monotonic() - began
    assert response.status_code == 201, response.text
    assert took < 0.5, f"a start took {took:.2f} s"


async def _timed_get(http: httpx.AsyncClient, path: str) -> float:
    began = time.monotonic()
    response = await http.get(path)
    assert response.status_code == 200, response.text
    return time.monotonic() - began


def _outcomes(inbox: Inbox, ids: list[str]) -> set[str]:
    return {s.outcome for s in inbox.snapshot() if s.reference in ids}


async def _circuit_is(http: httpx.AsyncClient, state: int) -> bool:
    return await metric_value(http, "otp_provider_circuit_state", provider=PROVIDER) == state


async def _lane_depth_is(http: httpx.AsyncClient, depth: int) -> bool:
    return await metric_value(http, "otp_lane_depth") == depth


async def _lane_depth_at_least(http: httpx.AsyncClient, depth: int) -> bool:
    return await metric_value(http, "otp_lane_depth") >= depth
