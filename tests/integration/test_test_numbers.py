"""Test numbers end to end on a real Redis: a start sends no SMS, the timeline says so, the
fixed code approves, it is never in Redis in clear, and no conversion metric moves."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from redis.asyncio import Redis

from tests.integration.conftest import API_KEY, metric_value, redis_contents

REVIEW_NUMBER = "+48601000001"
# Ten digits: a 6-digit code could turn up by chance inside a 13-digit timestamp in Redis.
FIXED_CODE = "8642097531"


def config_with_test_numbers(tmp_path: Path) -> str:
    path = tmp_path / "test-numbers.toml"
    path.write_text(
        "[[tenants]]\n"
        'name = "acme"\n'
        f'api_key_sha256 = ["{hashlib.sha256(API_KEY.encode()).hexdigest()}"]\n'
        'sender = "Acme"\n'
        # Spelt as people write it: read as +48601000001.
        f'test_numbers = {{"+48 601 000 001" = "{FIXED_CODE}"}}\n'
        "[tenants.policy]\n"
        "code_length = 10\n"
        "[tenants.policy.fraud]\n"
        'mode = "enforce"\n'
    )
    return str(path)


def flatten(value: Any) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, dict):
        return b"\n".join(flatten(k) + b"=" + flatten(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return b"\n".join(flatten(v) for v in value)
    return str(value).encode()


async def test_a_test_number_gets_no_sms_and_its_fixed_code_approves(
    make_harness: Callable[..., Any], tmp_path: Path, redis: Redis
) -> None:
    async with make_harness(OTP_CONFIG_FILE=config_with_test_numbers(tmp_path)) as harness:
        client = harness.client
        started = await metric_value(client, "otp_verifications_started_total", country="PL")
        approved = await metric_value(client, "otp_verifications_approved_total", country="PL")
        sent = await metric_value(client, "otp_sends_total", provider="sandbox")

        answer = await harness.start(REVIEW_NUMBER)
        assert answer.status_code == 201
        view = answer.json()
        assert view["delivery"]["status"] == "delivered"
        await harness.settle()
        assert harness.gateway.sent_to(REVIEW_NUMBER) == [], "no SMS may reach the provider"

        read = (await client.get(f"/otp/{view['id']}", headers=harness.headers)).json()
        assert [
            (e["status"], e["provider"], e["provider_status"]) for e in read["delivery"]["events"]
        ] == [("queued", "test_number", None), ("delivered", "test_number", "no_sms_sent")]

        contents = await redis_contents(redis)
        stored = b"".join(flatten(value) for _, value in contents.values())
        assert FIXED_CODE.encode() not in stored, "the fixed code must be stored hashed"
        # Nothing left in the lane for another process's sweep to find and send later.
        assert [value for kind, value in contents.values() if kind == b"stream" and value] == []

        checked = await harness.verify(FIXED_CODE, id=view["id"])
        assert checked.json()["valid"] is True
        assert (
            await metric_value(client, "otp_verifications_started_total", country="PL") == started
        )
        assert (
            await metric_value(client, "otp_verifications_approved_total", country="PL") == approved
        )
        assert await metric_value(client, "otp_sends_total", provider="sandbox") == sent
