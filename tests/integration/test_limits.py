"""Every limit a login backend can hit: a 429 with Retry-After and a problem `code`, counted.

Each refusal is checked as a client sees it (status, problem+json `code`, a `Retry-After` in whole
seconds that says when trying again makes sense) and as an SRE sees it (one more
`otp_rate_limited_total{scope}` on /metrics). Limits are per tenant and per number: a neighbour
never pays for someone else's refusals.
"""

from __future__ import annotations

import asyncio
from typing import Any

from tests.integration.conftest import (
    OTHER_KEY,
    Harness,
    assert_problem,
    metric_value,
    retry_after,
)

NUMBER = "+48601234567"
NEIGHBOUR = "+48601234568"
RATE_LIMITED = "otp_rate_limited_total"


async def _limited(harness: Harness, scope: str) -> float:
    return await metric_value(harness.client, RATE_LIMITED, scope=scope)


async def _resend(harness: Harness, verification_id: str, headers: dict[str, str] | None = None):
    return await harness.client.post(
        f"/otp/{verification_id}/resend", headers=headers or harness.headers
    )


async def _cancel(harness: Harness, verification_id: str) -> None:
    canceled = await harness.client.post(f"/otp/{verification_id}/cancel", headers=harness.headers)
    assert canceled.status_code == 200, canceled.text


async def _read(harness: Harness, verification_id: str) -> dict[str, Any]:
    read = await harness.client.get(f"/otp/{verification_id}", headers=harness.headers)
    assert read.status_code == 200, read.text
    body: dict[str, Any] = read.json()
    return body


def _wrong(code: str) -> str:
    """A code of the same shape that is certainly not `code`."""
    return "".join("1" if c == "0" else "0" for c in code)


# --- per client IP ------------------------------------------------------------------------------


async def test_too_many_starts_from_one_ip_are_refused_until_the_bucket_refills(
    make_harness,
) -> None:
    # 3 starts per minute: one start frees up every 20 s.
    async with make_harness({"limits": {"starts_per_ip_per_minute": 3}}) as harness:
        before = await _limited(harness, "ip")
        for n in range(3):
            assert (await harness.start(f"+4860123450{n}")).status_code == 201
        await harness.settle()
        sent = len(harness.gateway.outbox)

        refused = await harness.start("+48601234509")

        assert_problem(refused, 429, "rate_limited")
        assert 19 <= retry_after(refused) <= 20
        assert await _limited(harness, "ip") == before + 1
        await harness.settle()
        assert len(harness.gateway.outbox) == sent, "a refused start sent an SMS"


async def test_the_ip_limit_is_per_tenant_and_per_client_address(make_harness) -> None:
    # One trusted proxy: the end user's address is the last one in X-Forwarded-For.
    policy = {"limits": {"starts_per_ip_per_minute": 2}}
    async with make_harness(policy, OTP_TRUSTED_PROXIES="1") as harness:
        alice = {**harness.headers, "X-Forwarded-For": "203.0.113.7"}
        bob = {**harness.headers, "X-Forwarded-For": "198.51.100.9"}

        async def start(to: str, headers: dict[str, str]) -> Any:
            return await harness.client.post("/otp/start", json={"to": to}, headers=headers)

        assert (await start("+48601234500", alice)).status_code == 201
        assert (await start("+48601234501", alice)).status_code == 201
        assert_problem(await start("+48601234502", alice), 429, "rate_limited")

        # Another end user behind the same proxy still gets codes...
        assert (await start("+48601234503", bob)).status_code == 201
        # ...and so does another tenant's user from the very same address.
        other_tenant = {"X-Api-Key": OTHER_KEY, "X-Forwarded-For": "203.0.113.7"}
        assert (await start("+48601234504", other_tenant)).status_code == 201


# --- sends per number ---------------------------------------------------------------------------


async def test_sends_per_number_per_hour_are_capped_for_start_and_resend(make_harness) -> None:
    policy = {
        "resend_cooldown_seconds": 0,
        "limits": {"sends_per_number_per_hour": 2, "sends_per_number_per_day": 10},
    }
    async with make_harness(policy) as harness:
        before = await _limited(harness, "number_hour")
        first = (await harness.start(NUMBER)).json()
        assert (await harness.start(NUMBER)).json()["sends"] == 2
        code = await harness.code_for(NUMBER)
        sent = len(harness.gateway.outbox)

        by_resend = await _resend(harness, first["id"])
        by_start = await harness.start(NUMBER)

        for refused in (by_resend, by_start):
            assert_problem(refused, 429, "rate_limited")
            # 2 per hour: the next send is possible in half an hour.
            assert 1795 <= retry_after(refused) <= 1800
        assert await _limited(harness, "number_hour") == before + 2
        await harness.settle()
        assert len(harness.gateway.outbox) == sent, "a refused send reached the phone"
        assert (await _read(harness, first["id"]))["sends"] == 2
        # Nothing was rotated: the last code that arrived still works.
        assert (await harness.verify(code, id=first["id"])).json()["valid"] is True

        # Another number of the same tenant is not affected.
        assert (await harness.start(NEIGHBOUR)).status_code == 201


async def test_sends_per_number_per_day_are_capped_per_tenant(make_harness) -> None:
    policy = {
        "resend_cooldown_seconds": 0,
        "limits": {"sends_per_number_per_hour": 10, "sends_per_number_per_day": 2},
    }
    async with make_harness(policy) as harness:
        before = await _limited(harness, "number_day")
        first = (await harness.start(NUMBER)).json()
        assert (await _resend(harness, first["id"])).status_code == 200

        refused = await _resend(harness, first["id"])

        assert_problem(refused, 429, "rate_limited")
        # 2 per day: the next send is possible in 12 hours.
        assert 43_190 <= retry_after(refused) <= 43_200
        assert await _limited(harness, "number_day") == before + 1
        assert (await _read(harness, first["id"]))["sends"] == 2

        assert (await harness.start(NEIGHBOUR)).status_code == 201
        # The same number under another tenant has its own budget.
        other = await harness.client.post(
            "/otp/start", json={"to": NUMBER}, headers={"X-Api-Key": OTHER_KEY}
        )
        assert other.status_code == 201, other.text


# --- checks -------------------------------------------------------------------------------------


async def test_a_verification_runs_out_of_checks_and_then_refuses_even_the_right_code(
    make_harness,
) -> None:
    async with make_harness({"max_attempts": 3}) as harness:
        started = (await harness.start()).json()
        code = await harness.code_for()
        answers = [(await harness.verify(_wrong(code), id=started["id"])).json() for _ in range(3)]
        assert [(a["status"], a["attempts_left"]) for a in answers] == [
            ("pending", 2),
            ("pending", 1),
            ("failed", 0),
        ]
        assert_problem(await harness.verify(code, id=started["id"]), 404, "verification_not_found")
        assert_problem(await harness.verify(code, to=NUMBER), 404, "verification_not_found")


async def test_concurrent_checks_never_get_more_answers_than_the_attempt_budget(
    make_harness,
) -> None:
    async with make_harness({"max_attempts": 3}) as harness:
        started = (await harness.start()).json()
        code = await harness.code_for()
        answers = await asyncio.gather(
            *(harness.verify(_wrong(code), id=started["id"]) for _ in range(12))
        )
        checked = [a for a in answers if a.status_code == 200]
        assert len(checked) == 3
        assert sorted(a.json()["attempts_left"] for a in checked) == [0, 1, 2]
        assert sum(1 for a in answers if a.status_code == 404) == 9


async def test_failed_checks_across_verifications_lock_the_number_even_for_the_right_code(
    make_harness,
) -> None:
    policy = {"max_attempts": 5, "limits": {"failed_checks_per_number": 3}}
    async with make_harness(policy) as harness:
        before = await _limited(harness, "failed_checks")
        first = (await harness.start()).json()
        code = await harness.code_for()
        for _ in range(2):
            assert (await harness.verify(_wrong(code), id=first["id"])).json()["valid"] is False
        await _cancel(harness, first["id"])

        second = (await harness.start()).json()
        assert second["id"] != first["id"]
        code = await harness.code_for()
        assert (await harness.verify(_wrong(code), id=second["id"])).json()["valid"] is False

        # Three failures on this number: even the right code is refused, before any hashing.
        by_id = await harness.verify(code, id=second["id"])
        by_number = await harness.verify(code, to=NUMBER)
        for refused in (by_id, by_number):
            assert_problem(refused, 429, "rate_limited")
            # The window is 24 h from the first failure.
            assert 86_390 <= retry_after(refused) <= 86_400
        assert await _limited(harness, "failed_checks") == before + 2
        # The refusal took no attempt from the verification.
        assert (await _read(harness, second["id"]))["attempts_left"] == 4

        # Another number of the tenant is not affected.
        neighbour = (await harness.start(NEIGHBOUR)).json()
        approved = await harness.verify(await harness.code_for(NEIGHBOUR), id=neighbour["id"])
        assert approved.json()["valid"] is True
        # Nor is the same number under another tenant.
        other = {"X-Api-Key": OTHER_KEY}
        theirs = await harness.client.post("/otp/start", json={"to": NUMBER}, headers=other)
        assert theirs.status_code == 201
        checked = await harness.client.post(
            "/otp/verify",
            json={"id": theirs.json()["id"], "code": await harness.code_for(NUMBER)},
            headers=other,
        )
        assert checked.json()["valid"] is True


# --- resend cooldown and max sends --------------------------------------------------------------


async def test_a_resend_right_after_the_first_code_waits_the_default_30_seconds(
    harness: Harness,
) -> None:
    before = await _limited(harness, "resend_cooldown")
    started = (await harness.start()).json()

    for refused in (await _resend(harness, started["id"]), await harness.start()):
        assert_problem(refused, 429, "resend_too_soon")
        assert 29 <= retry_after(refused) <= 30
    assert await _limited(harness, "resend_cooldown") == before + 2
    assert (await _read(harness, started["id"]))["sends"] == 1


async def test_the_resend_cooldown_doubles_after_each_send(make_harness) -> None:
    # A 1 s base shows the doubling in real time: 1 s after the first send, 2 s after the second.
    async with make_harness({"resend_cooldown_seconds": 1}) as harness:
        before = await _limited(harness, "resend_cooldown")
        started = (await harness.start()).json()

        too_soon = await _resend(harness, started["id"])
        assert_problem(too_soon, 429, "resend_too_soon")
        assert retry_after(too_soon) == 1

        await asyncio.sleep(1.05)
        second = await _resend(harness, started["id"])
        assert second.status_code == 200, second.text
        assert second.json()["sends"] == 2

        too_soon = await _resend(harness, started["id"])
        assert_problem(too_soon, 429, "resend_too_soon")
        assert retry_after(too_soon) == 2

        # One second later it is still too soon: the cooldown really is 2 s now.
        await asyncio.sleep(1.05)
        still = await _resend(harness, started["id"])
        assert_problem(still, 429, "resend_too_soon")
        assert retry_after(still) == 1

        await asyncio.sleep(1.0)
        third = await _resend(harness, started["id"])
        assert third.status_code == 200, third.text
        assert third.json()["sends"] == 3
        assert await _limited(harness, "resend_cooldown") == before + 3


async def test_a_verification_stops_sending_at_max_sends_until_it_expires(make_harness) -> None:
    policy = {"max_sends": 2, "resend_cooldown_seconds": 0, "code_ttl_seconds": 600}
    async with make_harness(policy) as harness:
        before = await _limited(harness, "max_sends")
        started = (await harness.start()).json()
        resent = await _resend(harness, started["id"])
        assert resent.json()["sends_left"] == 0
        code = await harness.code_for()
        sent = len(harness.gateway.outbox)

        for refused in (await _resend(harness, started["id"]), await harness.start()):
            assert_problem(refused, 429, "max_sends_reached")
            # Until the verification expires and a new one may start.
            assert 595 <= retry_after(refused) <= 600
        assert await _limited(harness, "max_sends") == before + 2
        await harness.settle()
        assert len(harness.gateway.outbox) == sent
        # The last code that arrived still works.
        assert (await harness.verify(code, id=started["id"])).json()["valid"] is True
        # Another number is not affected.
        assert (await harness.start(NEIGHBOUR)).status_code == 201
