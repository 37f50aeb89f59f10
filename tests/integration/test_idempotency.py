"""Idempotency-Key on /otp/start: a retried request never sends a second SMS."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.integration.conftest import OTHER_KEY, Harness, assert_problem

NUMBER = "+48601234567"


async def _start(harness: Harness, key: str, body: dict[str, Any], api_key: str | None = None):
    auth = {"X-Api-Key": api_key} if api_key else harness.headers
    return await harness.client.post(
        "/otp/start", json=body, headers={**auth, "Idempotency-Key": key}
    )


async def _sent(harness: Harness) -> int:
    await harness.settle()
    return len(harness.gateway.outbox)


async def test_a_retried_start_gets_the_first_answer_again_and_sends_nothing(
    harness: Harness,
) -> None:
    body = {"to": NUMBER, "client_ref": "login-42"}
    first = await _start(harness, "login-42-try-1", body)
    assert first.status_code == 201, first.text
    assert "idempotent-replayed" not in first.headers
    assert await _sent(harness) == 1

    again = await _start(harness, "login-42-try-1", body)

    assert again.status_code == 201
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json()
    assert await _sent(harness) == 1
    read = await harness.client.get(f"/otp/{first.json()['id']}", headers=harness.headers)
    assert read.json()["sends"] == 1


async def test_the_same_key_with_another_body_is_a_conflict_and_sends_nothing(
    harness: Harness,
) -> None:
    first = await _start(harness, "k-1", {"to": NUMBER})
    assert first.status_code == 201
    assert await _sent(harness) == 1

    for other_body in ({"to": "+48601234568"}, {"to": NUMBER, "client_ref": "x"}):
        conflict = await _start(harness, "k-1", other_body)
        assert_problem(conflict, 409, "idempotency_conflict")

    assert await _sent(harness) == 1
    assert harness.gateway.last_to("+48601234568") is None
    read = await harness.client.get(f"/otp/{first.json()['id']}", headers=harness.headers)
    assert read.json()["sends"] == 1


async def test_tenants_using_the_same_key_string_do_not_collide(harness: Harness) -> None:
    body = {"to": NUMBER}
    ours = await _start(harness, "order-1", body)
    theirs = await _start(harness, "order-1", body, api_key=OTHER_KEY)

    assert ours.status_code == 201
    assert theirs.status_code == 201, theirs.text
    assert "idempotent-replayed" not in theirs.headers
    assert theirs.json()["id"] != ours.json()["id"]
    assert await _sent(harness) == 2
    # Each tenant's retry replays its own answer.
    again = await _start(harness, "order-1", body, api_key=OTHER_KEY)
    assert again.json()["id"] == theirs.json()["id"]
    assert again.headers["idempotent-replayed"] == "true"


async def test_a_key_may_hold_255_characters_but_not_256(harness: Harness) -> None:
    too_long = await _start(harness, "k" * 256, {"to": NUMBER})
    assert_problem(too_long, 400, "invalid_request")
    assert await _sent(harness) == 0

    longest = await _start(harness, "k" * 255, {"to": NUMBER})
    assert longest.status_code == 201, longest.text
    replay = await _start(harness, "k" * 255, {"to": NUMBER})
    assert replay.headers["idempotent-replayed"] == "true"
    assert await _sent(harness) == 1


async def test_a_failed_start_frees_its_key(make_harness) -> None:
    async with make_harness({"allowed_countries": ["PL"]}) as harness:
        # A toll-free number, then a number of a refused country: both refused, nothing stored.
        assert_problem(
            await _start(harness, "k-2", {"to": "+48800123456"}), 403, "destination_not_allowed"
        )
        assert_problem(
            await _start(harness, "k-2", {"to": "+4915112345678"}), 403, "destination_not_allowed"
        )
        assert_problem(await _start(harness, "k-2", {"to": "+4860"}), 400, "invalid_phone_number")

        fixed = await _start(harness, "k-2", {"to": NUMBER})

        assert fixed.status_code == 201, fixed.text
        assert "idempotent-replayed" not in fixed.headers
        assert await _sent(harness) == 1


async def test_a_rate_limited_start_frees_its_key(make_harness) -> None:
    async with make_harness({"limits": {"starts_per_ip_per_minute": 1}}) as harness:
        assert (await harness.start("+48601234568")).status_code == 201
        limited = await _start(harness, "k-3", {"to": NUMBER})
        assert_problem(limited, 429, "rate_limited")
        # The retry is refused for the same reason, not replayed and not called a conflict.
        assert_problem(await _start(harness, "k-3", {"to": NUMBER}), 429, "rate_limited")
        assert harness.gateway.last_to(NUMBER) is None


async def test_concurrent_requests_with_one_key_send_one_sms(harness: Harness) -> None:
    answers = await asyncio.gather(*(_start(harness, "k-4", {"to": NUMBER}) for _ in range(8)))

    assert {a.status_code for a in answers} <= {201, 409}
    created = [a for a in answers if a.status_code == 201]
    assert len({a.json()["id"] for a in created}) == 1
    assert sum(1 for a in created if "idempotent-replayed" not in a.headers) == 1
    for conflict in (a for a in answers if a.status_code == 409):
        assert_problem(conflict, 409, "idempotency_conflict")
    assert await _sent(harness) == 1
