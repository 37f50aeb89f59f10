"""The SmsGateway protocol: what the dispatcher needs from an SMS provider.

Also the HTTP plumbing the REST adapters share, so httpx errors are mapped in one place.
"""

from __future__ import annotations

import asyncio
import re
from typing import TYPE_CHECKING, Any, Protocol

import httpx
import msgspec

from otpservice.errors import ProviderRejected, ProviderUnavailable

if TYPE_CHECKING:
    from collections.abc import Mapping


class SmsMessage(msgspec.Struct, frozen=True, kw_only=True):
    """One SMS to submit through the priority lane.

    `text` holds the code: never log or repr it (see __repr__).
    """

    to: str
    """E.164 number with the leading '+'."""
    text: str
    sender: str
    external_id: str
    """Unique per send; the key that matches delivery reports to the send."""
    validity_seconds: int
    """Remaining lifetime of the code: the provider must not deliver it later."""
    webhook_url: str | None = None
    """Where the provider should post delivery reports, when the service knows its public URL."""

    def __repr__(self) -> str:
        return f"SmsMessage(external_id={self.external_id!r}, text=<redacted>)"


class SubmitReceipt(msgspec.Struct, frozen=True, kw_only=True):
    """What the provider said when it accepted the SMS."""

    provider_message_id: str | None = None
    """The provider's own id, when it has one (Flowstates); MessageFlow matches on external_id."""
    provider_status: str | None = None


class SmsGateway(Protocol):
    """One provider's priority channel.

    `submit` makes exactly one attempt. It returns a receipt when the provider accepted the SMS,
    raises `ProviderRejected` when the provider refused it for good (4xx but 429, or an error in
    its envelope) and `ProviderUnavailable` when a retry may help (429, 5xx, timeout, connection
    error, malformed answer). Retries, timing and metrics live in the dispatcher, not here.
    """

    name: str
    min_validity_seconds: int
    """The least remaining code lifetime this provider can carry (MessageFlow counts validity in
    whole minutes); with less left, the retry loop treats the code as expired."""

    async def submit(self, message: SmsMessage) -> SubmitReceipt: ...

    async def aclose(self) -> None: ...


# --- Shared by the REST adapters: the one place where httpx errors become ProviderErrors. ---------

_DIGIT_RUN = re.compile(r"[0-9]{4,}")
_PROVIDER_TEXT_LIMIT = 200


async def post_json(
    client: httpx.AsyncClient,
    url: str,
    *,
    headers: Mapping[str, str],
    payload: Mapping[str, Any],
    total_timeout: float,
) -> httpx.Response:
    """POST `payload` as JSON and read the whole answer within `total_timeout` seconds.

    Every httpx failure is mapped here, once: callers see only ProviderUnavailable.
    """
    request_headers = {
        **headers,
        "Content-Type": "application/json",
        "Accept": "application/json",
    }
    try:
        # The client's own timeouts bound each phase; this bounds the sum (a slow trickle of
        # bytes resets a read timeout but not this one).
        async with asyncio.timeout(total_timeout):
            return await client.post(
                url, content=msgspec.json.encode(payload), headers=request_headers
            )
    except TimeoutError as exc:
        raise ProviderUnavailable("timeout") from exc
    except httpx.TimeoutException as exc:
        raise ProviderUnavailable("timeout") from exc
    except httpx.TransportError as exc:
        raise ProviderUnavailable("connection_error") from exc
    except httpx.DecodingError as exc:
        # The answer's content encoding was broken: the same doubt as an unreadable body.
        raise ProviderUnavailable("malformed_response") from exc
    except httpx.RequestError as exc:
        raise ProviderUnavailable("request_error") from exc


def raise_for_status(response: httpx.Response, *, text: str) -> None:
    """Raise the ProviderError a non-2xx answer means; return on 2xx.

    429 and 5xx may pass: unavailable. Any other 4xx is a refusal for good: rejected. 1xx/3xx
    (redirects are not followed) are not an acceptance either; the provider never took the SMS,
    so the lane retries and, if that never succeeds, reports the send failed.
    """
    status = response.status_code
    if 200 <= status < 300:
        return
    code, detail = error_details(json_or_none(response.content), text=text)
    if 400 <= status < 500 and status != 429:
        raise ProviderRejected(f"http_{status}", code=code, message=detail)
    raise ProviderUnavailable(f"http_{status}", code=code, message=detail)


def json_or_none(content: bytes) -> Any:
    """The decoded JSON body, or None when it is empty or not JSON."""
    try:
        return msgspec.json.decode(content)
    except (msgspec.DecodeError, RecursionError):
        return None


def error_details(body: Any, *, text: str) -> tuple[str | None, str | None]:
    """(code, message) from an error answer, tolerant of the usual shapes; redacted.

    Looks at `errors[0]`, `error` and the top level, in that order.
    """
    candidates: list[Any] = []
    if isinstance(body, dict):
        errors = body.get("errors")
        if isinstance(errors, list) and errors:
            candidates.append(errors[0])
        candidates += [errors, body.get("error"), body]
    for candidate in candidates:
        if isinstance(candidate, str):
            return None, redact_provider_text(candidate, text=text)
        if not isinstance(candidate, dict):
            continue
        code = scalar_text(candidate.get("code")) or scalar_text(candidate.get("error_code"))
        message = next(
            (
                value
                for key in ("message", "detail", "title", "description")
                if (value := scalar_text(candidate.get(key))) is not None
            ),
            None,
        )
        if code is not None or message is not None:
            return (
                redact_provider_text(code, text=text, digits=False),
                redact_provider_text(message, text=text),
            )
    return None, None


def redact_provider_text(value: str | None, *, text: str, digits: bool = True) -> str | None:
    """A provider's words, safe to log and show: no SMS text, no code, no phone number.

    Providers echo what they refuse ("invalid number +48601234567", "bad text '... 123456'").
    Biased towards over-hiding: any run of four or more digits goes, which takes every code
    (4-10 digits) and every phone number with it, at the price of the odd useful number.
    """
    if value is None:
        return None
    if text:
        value = value.replace(text, "<sms text>")
    if digits:
        value = _DIGIT_RUN.sub("<digits>", value)
    return value[:_PROVIDER_TEXT_LIMIT] or None


def scalar_text(value: Any) -> str | None:
    """A JSON string or integer as text; None for anything else, including "" and booleans."""
    # bool is an int, but `true` is never an id, a status or a code.
    if isinstance(value, bool) or not isinstance(value, str | int) or value == "":
        return None
    return str(value)
