"""A code leaves the service only inside the SMS: never in Redis, a log line, a metric or any
HTTP response. And no key name in Redis shows a phone number.
"""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from redis.asyncio import Redis

from tests.integration.conftest import OTHER_KEY, Harness, redis_contents

# 10-digit codes instead of the default 6: the store and the responses are full of digits
# (millisecond timestamps have 13, expiry and TTL values more), so a random 6-digit code would
# sometimes appear inside one of them by chance and fail the test for nothing. A given 10-digit
# code turns up by chance in a 13-digit timestamp about once in 2.5 * 10^9.
CODE_LENGTH = 10
POLICY = {
    "code_length": CODE_LENGTH,
    "resend_cooldown_seconds": 0,
    "accept_previous_code": True,
    "max_attempts": 6,
}
ALICE = "+48601234567"
BOB = "+48601234568"
CAROL = "+4915112345678"
NUMBERS = (ALICE, BOB, CAROL)


def _flatten(value: Any) -> bytes:
    """Every byte of a Redis value as read by redis_contents: strings, hashes, lists, sets..."""
    if isinstance(value, bytes):
        return value
    if isinstance(value, dict):
        return b"\n".join(_flatten(k) + b"=" + _flatten(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return b"\n".join(_flatten(v) for v in value)
    return str(value).encode()


def _wrong(code: str) -> str:
    return "".join(str((int(c) + 5) % 10) for c in code)


@contextmanager
def _debug_logs_into(stream: io.StringIO) -> Iterator[None]:
    """Capture every record at DEBUG into `stream`, even after the app set up its own logging.

    Building the Litestar app replaces the root logger's handlers and resets its level to INFO
    (test_operations.py has the test for that), which silently detaches `captured_logs`. Attach
    a handler again once the app exists, so this test sees what the service logs.
    """
    root = logging.getLogger()
    handler = logging.StreamHandler(stream)
    handler.setLevel(logging.DEBUG)
    previous = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield
    finally:
        root.removeHandler(handler)
        root.setLevel(previous)


class Session:
    """Runs requests and keeps every response, headers and body, as the client saw it."""

    def __init__(self, harness: Harness) -> None:
        self.harness = harness
        self.responses: list[bytes] = []

    async def call(self, method: str, path: str, **kwargs: Any) -> Any:
        kwargs.setdefault("headers", self.harness.headers)
        response = await self.harness.client.request(method, path, **kwargs)
        headers = "\n".join(f"{k}: {v}" for k, v in response.headers.items())
        self.responses.append(headers.encode() + b"\n\n" + response.content)
        return response

    async def start(self, to: str, **headers: str) -> Any:
        return await self.call(
            "POST",
            "/otp/start",
            json={"to": to, "client_ref": "login-7"},
            headers={**self.harness.headers, **headers},
        )

    async def verify(self, code: str, **by: str) -> Any:
        return await self.call("POST", "/otp/verify", json={"code": code, **by})


async def test_no_code_appears_anywhere_but_in_the_sms(
    make_harness, redis: Redis, captured_logs: io.StringIO
) -> None:
    async with make_harness(POLICY, OTP_LOG_LEVEL="DEBUG") as harness:
        with _debug_logs_into(captured_logs):
            session = await _realistic_session(harness)
        await _assert_no_code_anywhere(harness, session, redis, captured_logs)


async def _realistic_session(harness: Harness) -> Session:
    s = Session(harness)
    # Alice: idempotent start and its replay, two resends, wrong checks, then the right one.
    alice = (await s.start(ALICE, **{"Idempotency-Key": "alice-1"})).json()
    assert (await s.start(ALICE, **{"Idempotency-Key": "alice-1"})).status_code == 201
    assert (await s.call("POST", f"/otp/{alice['id']}/resend")).status_code == 200
    assert (await s.start(ALICE)).json()["sends"] == 3
    alice_code = await harness.code_for(ALICE)
    for _ in range(2):
        assert (await s.verify(_wrong(alice_code), id=alice["id"])).json()["valid"] is False
    await s.call("GET", f"/otp/{alice['id']}")
    assert (await s.verify(alice_code, to=ALICE)).json()["valid"] is True
    await s.verify(alice_code, id=alice["id"])  # 404: finished

    # Bob: a start, a wrong check by number, a read, a cancel, a check after the cancel.
    bob = (await s.start(BOB)).json()
    bob_code = await harness.code_for(BOB)
    await s.verify(_wrong(bob_code), to=BOB)
    await s.call("GET", f"/otp/{bob['id']}")
    await s.call("POST", f"/otp/{bob['id']}/cancel")
    await s.verify(bob_code, id=bob["id"])

    # Carol, at another tenant (6-digit codes there, so not collected: see CODE_LENGTH).
    other = {"X-Api-Key": OTHER_KEY}
    carol = (await s.call("POST", "/otp/start", json={"to": CAROL}, headers=other)).json()
    await s.call("GET", f"/otp/{carol['id']}", headers=other)
    # A third of our own starts, left pending with its code live in Redis.
    carol_ours = (await s.start(CAROL)).json()
    await s.call("GET", f"/otp/{carol_ours['id']}")
    await s.call("GET", "/metrics", headers={})
    await harness.settle()
    return s


async def _assert_no_code_anywhere(
    harness: Harness, session: Session, redis: Redis, captured_logs: io.StringIO
) -> None:
    pattern = re.compile(rf"\b\d{{{CODE_LENGTH}}}\b")
    codes = {
        code
        for sms in harness.gateway.outbox
        if sms.to in NUMBERS
        for code in pattern.findall(sms.text)
    }
    # Alice got 3 codes, Bob 1 and Carol 1 from us (the other tenant's are 6 digits).
    assert len(codes) == 5, [sms.text for sms in harness.gateway.outbox]

    store = await redis_contents(redis)
    dump = b"\n".join(key + b"\n" + _flatten(value) for key, (_, value) in store.items())
    logs = captured_logs.getvalue().encode()
    assert logs, "the log capture saw nothing: the session was not logged at all"
    for code in codes:
        raw = code.encode()
        assert raw not in dump, f"a code is in Redis in clear text: {code}"
        assert raw not in logs, f"a code is in the logs: {code}"
        for response in session.responses:
            assert raw not in response, f"a code is in an HTTP response: {response!r}"

    key_names = b"\n".join(store)
    for number in NUMBERS:
        for form in (number, number.lstrip("+"), number[3:]):
            assert form.encode() not in key_names, f"{form} is in a Redis key name"
