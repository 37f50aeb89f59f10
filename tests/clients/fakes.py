"""Canned answers of the service for the client's unit tests (through httpx.MockTransport)."""

from __future__ import annotations

from typing import Any

import httpx

VERIFICATION_ID = "uceqclckndmbxtxhdx5xw4esmu3cn72yzvqc5k4rh4"


def verification_json(**changes: Any) -> dict[str, Any]:
    """A Verification body as the service writes it."""
    body: dict[str, Any] = {
        "id": VERIFICATION_ID,
        "to": "+48601234567",
        "status": "pending",
        "channel": "sms",
        "created_at": "2026-11-23T10:00:00Z",
        "expires_at": "2026-11-23T10:10:00Z",
        "attempts_left": 5,
        "sends": 1,
        "sends_left": 4,
        "resend_available_at": "2026-11-23T10:00:30Z",
        "delivery": {
            "status": "queued",
            "updated_at": "2026-11-23T10:00:00Z",
            "events": [
                {
                    "status": "queued",
                    "at": "2026-11-23T10:00:00Z",
                    "send": 1,
                    "provider": "sandbox",
                    "provider_status": None,
                    "error_code": None,
                }
            ],
        },
        "client_ref": "login-42",
    }
    body.update(changes)
    return body


def check_json(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": VERIFICATION_ID,
        "status": "approved",
        "valid": True,
        "attempts_left": 4,
    }
    body.update(changes)
    return body


def problem(
    status: int, code: str, *, retry_after: int | str | None = None, detail: str | None = None
) -> httpx.Response:
    """An RFC 9457 answer as the service writes it."""
    headers = {"Content-Type": "application/problem+json"}
    if retry_after is not None:
        headers["Retry-After"] = str(retry_after)
    return httpx.Response(
        status,
        headers=headers,
        json={
            "status": status,
            "type": f"urn:otpservice:problem:{code}",
            "title": "A title",
            "detail": detail or f"what {code} means",
            "code": code,
        },
    )


class Script:
    """A MockTransport handler that plays `answers` in order (a Response, or an exception to
    raise) and records every request it was sent."""

    def __init__(self, *answers: httpx.Response | Exception) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if not self.answers:
            raise AssertionError(f"unexpected request {request.method} {request.url}")
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    @property
    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self)
