"""Every kind of bad input gets a problem+json answer with the right status and code, and changes
nothing: Redis holds exactly the same keys and values afterwards, and no SMS goes out.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from redis.asyncio import Redis

from tests.integration.conftest import API_KEY, Harness, assert_problem, redis_contents

NUMBER = "+48601234567"
AUTH = {"Authorization": f"Bearer {API_KEY}"}
# The tenant sends codes to Poland only.
POLICY = {"allowed_countries": ["PL"]}


@dataclass(frozen=True)
class Bad:
    """One bad request: what is sent and what must come back."""

    method: str
    path: str
    status: int
    code: str
    json: Any = None
    content: bytes | None = None
    headers: dict[str, str] = field(default_factory=lambda: dict(AUTH))
    detail: str | None = None
    """A phrase the problem's `detail` must contain (the reason, for phone numbers)."""


def start(body: Any, status: int = 400, code: str = "invalid_request", **kw: Any) -> Bad:
    return Bad("POST", "/otp/start", status, code, json=body, **kw)


def verify(body: Any, status: int = 400, code: str = "invalid_request", **kw: Any) -> Bad:
    return Bad("POST", "/otp/verify", status, code, json=body, **kw)


def phone(to: str, reason: str) -> Bad:
    return start({"to": to}, 400, "invalid_phone_number", detail=reason)


JSON_TYPE = {"Content-Type": "application/json"}
JSON = {**AUTH, **JSON_TYPE}
EXISTING = "<id of the pending verification>"
DEEP = b"[" * 1000 + b"]" * 1000
DEEP_OBJECTS = b'{"a":' * 2500 + b"1" + b"}" * 2500


def as_type(path: str, content_type: str | None) -> Bad:
    """A well-formed JSON body under another content type: refused before it is read."""
    body = (
        b'{"to": "+48601234567"}'
        if path == "/otp/start"
        else b'{"to": "+48601234567", "code": "123456"}'
    )
    headers = {**AUTH, "Content-Type": content_type} if content_type else dict(AUTH)
    return Bad("POST", path, 415, "unsupported_media_type", content=body, headers=headers)


CASES: dict[str, Bad] = {
    # --- /otp/start: shape of the body
    "malformed JSON": Bad(
        "POST", "/otp/start", 400, "invalid_request", content=b'{"to": "+48', headers=JSON
    ),
    "JSON that is a list": start([NUMBER]),
    "JSON that is a string": start(NUMBER),
    "JSON null": Bad("POST", "/otp/start", 400, "invalid_request", content=b"null", headers=JSON),
    "an empty body": Bad("POST", "/otp/start", 400, "invalid_request", content=b"", headers=JSON),
    "to as a number": start({"to": 48601234567}),
    "client_ref as a number": start({"to": NUMBER, "client_ref": 42}),
    "an unknown field": start({"to": NUMBER, "channel": "voice"}),
    "a missing to": start({"client_ref": "login-42"}),
    "client_ref of 65 characters": start({"to": NUMBER, "client_ref": "r" * 65}),
    "an Idempotency-Key of 256 characters": start(
        {"to": NUMBER}, headers={**AUTH, "Idempotency-Key": "k" * 256}
    ),
    "a body over 16 KiB": start(
        {"to": NUMBER, "client_ref": "r" * 17_000}, 413, "payload_too_large"
    ),
    "an app_hash of the wrong length": start({"to": NUMBER, "app_hash": "short"}),
    "an app_hash with characters outside base64": start({"to": NUMBER, "app_hash": "abc-def_gh!"}),
    # --- /otp/start: bodies that are not plain JSON of one meaning
    "1,000 nested arrays (no API key: never read)": Bad(
        "POST", "/otp/start", 401, "unauthorized", content=DEEP, headers=JSON_TYPE
    ),
    "1,000 nested arrays": Bad(
        "POST", "/otp/start", 400, "invalid_request", content=DEEP, headers=JSON
    ),
    "2,500 nested objects": Bad(
        "POST", "/otp/start", 400, "invalid_request", content=DEEP_OBJECTS, headers=JSON
    ),
    "a duplicated key": Bad(
        "POST",
        "/otp/start",
        400,
        "invalid_request",
        headers=JSON,
        content=b'{"to": "+48601234567", "to": "+48601234568"}',
    ),
    "a body that is not UTF-8": Bad(
        "POST", "/otp/start", 400, "invalid_request", content=b'{"to": "+48\xff"}', headers=JSON
    ),
    "NaN": Bad("POST", "/otp/start", 400, "invalid_request", content=b'{"to": NaN}', headers=JSON),
    "JSON sent as text/plain": as_type("/otp/start", "text/plain"),
    "JSON sent as application/xml": as_type("/otp/start", "application/xml"),
    "JSON sent as a form": as_type("/otp/start", "application/x-www-form-urlencoded"),
    "JSON sent as multipart": as_type("/otp/start", "multipart/form-data; boundary=x"),
    "JSON sent with no content type": as_type("/otp/start", None),
    "verify JSON sent as text/plain": as_type("/otp/verify", "text/plain"),
    "verify with a duplicated code": Bad(
        "POST",
        "/otp/verify",
        400,
        "invalid_request",
        headers=JSON,
        content=b'{"id": "<id of the pending verification>", "code": "000000", "code": "111111"}',
    ),
    "verify with 1,000 nested arrays": Bad(
        "POST", "/otp/verify", 400, "invalid_request", content=DEEP, headers=JSON
    ),
    # --- /otp/start: the number
    "a number without '+'": phone("48601234567", "E.164"),
    "an unknown country code": phone("+999123456789", "unknown country calling code"),
    "a number too short": phone("+4860", "too short"),
    "a number too long": phone("+4860123456789012", "too long"),
    "a number of letters": phone("+48abcdefghi", "not a phone number"),
    # Letters are not E.164: read as a keypad "vanity" number this would text +48601222333.
    "a number with letters in it": phone("+48601ABCDEF", "not"),
    "a number of no range in its country": phone("+486012345678", "no such number range"),
    "a toll-free number": start({"to": "+48800123456"}, 403, "destination_not_allowed"),
    "a country the tenant does not serve": start(
        {"to": "+4915112345678"}, 403, "destination_not_allowed"
    ),
    # --- /otp/verify
    "a code as a number": verify({"id": EXISTING, "code": 123456}),
    "both id and to": verify({"id": EXISTING, "to": NUMBER, "code": "123456"}),
    "neither id nor to": verify({"code": "123456"}),
    "a missing code": verify({"id": EXISTING}),
    "an unknown field in verify": verify({"id": EXISTING, "code": "123456", "remember": True}),
    "verify JSON that is a list": verify([EXISTING, "123456"]),
    "malformed verify JSON": Bad(
        "POST", "/otp/verify", 400, "invalid_request", content=b'{"code": 12', headers=JSON
    ),
    "a code too short": verify({"id": EXISTING, "code": "12345"}, code="invalid_code_format"),
    "a code too long": verify({"id": EXISTING, "code": "1234567"}, code="invalid_code_format"),
    "a code with a letter": verify({"id": EXISTING, "code": "12a456"}, code="invalid_code_format"),
    "a code with a space": verify({"id": EXISTING, "code": "123 56"}, code="invalid_code_format"),
    "a code of non-ASCII digits": verify(
        {"id": EXISTING, "code": "١٢٣٤٥٦"}, code="invalid_code_format"
    ),
    "a code checked by a bad number": verify(
        {"to": "+4860", "code": "123456"}, code="invalid_phone_number"
    ),
    # --- authentication
    "start without an API key": start({"to": NUMBER}, 401, "unauthorized", headers={}),
    "start with a wrong bearer key": start(
        {"to": NUMBER}, 401, "unauthorized", headers={"Authorization": "Bearer nope"}
    ),
    "start with a wrong X-Api-Key": start(
        {"to": NUMBER}, 401, "unauthorized", headers={"X-Api-Key": "nope"}
    ),
    "start with the key under another scheme": start(
        {"to": NUMBER}, 401, "unauthorized", headers={"Authorization": f"Basic {API_KEY}"}
    ),
    "verify without an API key": verify(
        {"id": EXISTING, "code": "123456"}, 401, "unauthorized", headers={}
    ),
    "read without an API key": Bad("GET", f"/otp/{EXISTING}", 401, "unauthorized", headers={}),
    "resend with a wrong key": Bad(
        "POST", f"/otp/{EXISTING}/resend", 401, "unauthorized", headers={"X-Api-Key": "nope"}
    ),
    "cancel with a wrong key": Bad(
        "POST", f"/otp/{EXISTING}/cancel", 401, "unauthorized", headers={"X-Api-Key": "nope"}
    ),
    # --- routing
    "an unknown route": Bad("GET", "/otp/start/now", 404, "not_found"),
    "an unknown top-level route": Bad("POST", "/verify", 404, "not_found"),
    "GET on /otp/start": Bad("GET", "/otp/start", 405, "method_not_allowed"),
    "DELETE on a verification": Bad("DELETE", f"/otp/{EXISTING}", 405, "method_not_allowed"),
}


@pytest.fixture
async def pending(make_harness) -> AsyncIterator[tuple[Harness, str]]:
    """A harness with one pending verification whose code was sent, and the lane at rest."""
    async with make_harness(POLICY) as harness:
        started = await harness.start(NUMBER)
        assert started.status_code == 201
        await harness.code_for(NUMBER)
        yield harness, started.json()["id"]


def _fill(value: Any, verification_id: str) -> Any:
    if isinstance(value, bytes):
        return value.replace(EXISTING.encode(), verification_id.encode())
    if isinstance(value, str):
        return value.replace(EXISTING, verification_id)
    if isinstance(value, dict):
        return {k: _fill(v, verification_id) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, verification_id) for v in value]
    return value


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
async def test_bad_input_gets_a_problem_and_changes_nothing(
    pending: tuple[Harness, str], redis: Redis, case: Bad
) -> None:
    harness, verification_id = pending
    before = await redis_contents(redis)
    sent = len(harness.gateway.outbox)
    kwargs: dict[str, Any] = {"headers": case.headers}
    if case.content is not None:
        kwargs["content"] = _fill(case.content, verification_id)
    elif case.json is not None:
        kwargs["json"] = _fill(case.json, verification_id)

    answer = await harness.client.request(case.method, _fill(case.path, verification_id), **kwargs)

    body = assert_problem(answer, case.status, case.code)
    if case.detail is not None:
        assert case.detail in body["detail"], body["detail"]
    await harness.settle()
    assert len(harness.gateway.outbox) == sent, "a refused request sent an SMS"
    assert await redis_contents(redis) == before, "a refused request changed Redis"


async def test_bad_input_costs_the_verification_no_attempt(
    pending: tuple[Harness, str],
) -> None:
    harness, verification_id = pending
    for bad in ("12345", "12a456", "123 56"):
        assert (await harness.verify(bad, id=verification_id)).status_code == 400
    read = await harness.client.get(f"/otp/{verification_id}", headers=harness.headers)
    assert read.json()["attempts_left"] == 5
    assert read.json()["sends"] == 1


async def test_a_duplicated_key_is_refused_not_read_as_its_last_value(
    pending: tuple[Harness, str],
) -> None:
    """A proxy that reads the first `code` and a service that read the last would disagree."""
    harness, verification_id = pending
    code = await harness.code_for(NUMBER)
    wrong = "000000" if code != "000000" else "111111"
    body = f'{{"id": "{verification_id}", "code": "{wrong}", "code": "{code}"}}'.encode()
    answer = await harness.client.post("/otp/verify", content=body, headers=JSON)
    assert_problem(answer, 400, "invalid_request")
    assert "code" in answer.json()["detail"]
    read = await harness.client.get(f"/otp/{verification_id}", headers=harness.headers)
    assert (read.json()["status"], read.json()["attempts_left"]) == ("pending", 5)
