"""GET /dev/inbox: an integrator's tests read the sandbox SMS of a number over HTTP, in
development mode only."""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

import pytest

from tests.integration.conftest import OTHER_KEY, PEPPER, Harness

NUMBER = "+48601234567"


async def inbox(harness: Harness, to: str, **kwargs: Any) -> Any:
    kwargs.setdefault("headers", harness.headers)
    return await harness.client.get("/dev/inbox", params={"to": to}, **kwargs)


async def test_the_inbox_lists_a_numbers_sms_newest_first_with_their_text(
    make_harness: Callable[..., Any],
) -> None:
    async with make_harness({"resend_cooldown_seconds": 0}) as harness:
        first = (await harness.start(NUMBER)).json()
        await harness.settle()
        second = await harness.client.post(f"/otp/{first['id']}/resend", headers=harness.headers)
        assert second.status_code == 200
        code = await harness.code_for(NUMBER)
        answer = await inbox(harness, NUMBER)
        assert answer.status_code == 200
        body = answer.json()
        assert body["to"] == NUMBER
        assert [(m["verification_id"], m["send"]) for m in body["messages"]] == [
            (first["id"], 2),
            (first["id"], 1),
        ]
        newest = body["messages"][0]
        assert code in newest["text"]
        assert newest["sender"] == "Acme"
        assert newest["sent_at"].endswith("Z")
        # The code it shows is the one that works.
        assert (await harness.verify(code, id=first["id"])).json()["valid"] is True


@pytest.mark.parametrize(
    "spelling",
    ["+48 601-234-567", "+48 (601) 234.567", " 48601234567"],
    ids=["spaced", "punctuated", "bare-plus-read-as-a-space"],
)
async def test_any_common_spelling_of_the_number_finds_its_sms(
    harness: Harness, spelling: str
) -> None:
    await harness.start(NUMBER)
    await harness.settle()
    answer = await inbox(harness, spelling)
    assert answer.status_code == 200
    assert answer.json()["to"] == NUMBER
    assert len(answer.json()["messages"]) == 1


async def test_a_bare_plus_in_the_url_is_taken_for_a_plus(harness: Harness) -> None:
    await harness.start(NUMBER)
    await harness.settle()
    answer = await harness.client.get(f"/dev/inbox?to={NUMBER}", headers=harness.headers)
    assert answer.status_code == 200
    assert len(answer.json()["messages"]) == 1


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ("?to=not-a-number", "invalid_phone_number"),
        ("?to=48601234567", "invalid_phone_number"),
        ("?to=%2B999123", "invalid_phone_number"),
        ("", "invalid_request"),
    ],
)
async def test_a_bad_number_is_a_problem_400(harness: Harness, query: str, code: str) -> None:
    answer = await harness.client.get(f"/dev/inbox{query}", headers=harness.headers)
    assert answer.status_code == 400
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert answer.json()["code"] == code


async def test_a_number_without_sms_has_an_empty_inbox(harness: Harness) -> None:
    answer = await inbox(harness, "+48601234568")
    assert answer.status_code == 200
    assert answer.json() == {"to": "+48601234568", "messages": []}


async def test_the_inbox_needs_an_api_key_and_shows_only_the_callers_sms(
    harness: Harness,
) -> None:
    await harness.start(NUMBER)
    await harness.settle()
    assert (await inbox(harness, NUMBER, headers={})).status_code == 401
    other = await inbox(harness, NUMBER, headers={"Authorization": f"Bearer {OTHER_KEY}"})
    assert other.status_code == 200
    assert other.json()["messages"] == []


async def test_production_mode_has_no_inbox(make_harness: Callable[..., Any]) -> None:
    production = {
        "OTP_ENV": "production",
        "OTP_PEPPER": "base64:" + base64.b64encode(base64.b64decode(PEPPER) * 2).decode(),
        "OTP_ARGON2_PROFILE": "default",
        "OTP_PROVIDER": "messageflow",
        "OTP_MESSAGEFLOW_PRIORITY_BASE_URL": "https://priority.example",
        "OTP_MESSAGEFLOW_PRIORITY_API_KEY": "k",
        "OTP_MESSAGEFLOW_PRIORITY_APP_KEY": "a",
        "OTP_MESSAGEFLOW_WEBHOOK_SECRET": "s" * 32,
    }
    async with make_harness(**production) as harness:
        assert harness.app.state.settings.production
        answer = await inbox(harness, NUMBER)
        assert answer.status_code == 404
        assert answer.json()["code"] == "not_found"
        document = (await harness.client.get("/schema/openapi.json")).json()
        assert "/dev/inbox" not in document["paths"]
