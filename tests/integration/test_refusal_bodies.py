"""A 429's body tells a client's developer which limit was hit and how long to wait: its scope
and the same seconds as Retry-After."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from tests.integration.conftest import Harness

NUMBER = "+48601234567"


async def per_ip(harness: Harness) -> Any:
    await harness.start("+48601234568")
    return await harness.start(NUMBER)


async def per_number_hour(harness: Harness) -> Any:
    first = (await harness.start(NUMBER)).json()
    await harness.client.post(f"/otp/{first['id']}/cancel", headers=harness.headers)
    return await harness.start(NUMBER)


async def resend_cooldown(harness: Harness) -> Any:
    await harness.start(NUMBER)
    return await harness.start(NUMBER)


async def max_sends(harness: Harness) -> Any:
    await harness.start(NUMBER)
    return await harness.start(NUMBER)


async def failed_checks(harness: Harness) -> Any:
    await harness.start(NUMBER)
    await harness.verify("000000", to=NUMBER)
    return await harness.verify("000000", to=NUMBER)


CASES: dict[str, tuple[dict[str, Any], Callable[[Harness], Awaitable[Any]], str]] = {
    "ip": ({"limits": {"starts_per_ip_per_minute": 1}}, per_ip, "rate_limited"),
    "number_hour": (
        {"limits": {"sends_per_number_per_hour": 1}},
        per_number_hour,
        "rate_limited",
    ),
    "resend_cooldown": ({}, resend_cooldown, "resend_too_soon"),
    "max_sends": ({"max_sends": 1}, max_sends, "max_sends_reached"),
    "failed_checks": (
        {"limits": {"failed_checks_per_number": 1}},
        failed_checks,
        "rate_limited",
    ),
}


@pytest.mark.parametrize("scope", sorted(CASES))
async def test_a_429_names_the_limits_scope_and_the_seconds_to_wait(
    make_harness: Callable[..., Any], scope: str
) -> None:
    policy, provoke, code = CASES[scope]
    async with make_harness(policy) as harness:
        refused = await provoke(harness)
        assert refused.status_code == 429
        problem = refused.json()
        assert problem["code"] == code
        wait = refused.headers["retry-after"]
        assert f"Limit '{scope}' reached" in problem["detail"]
        found = re.search(r"in (\d+) s\.$", problem["detail"])
        assert found is not None, problem["detail"]
        assert found.group(1) == wait
