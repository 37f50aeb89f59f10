"""Every error the client raises about a call, one class per problem `code` of the service.

The service answers every error as RFC 9457 problem+json with a stable `code`; `from_response`
turns that answer into one of these. The tree:

    OtpServiceError                     any failed call: status, code, detail, retry_after
    ├── InvalidRequest                  400 invalid_request
    │   ├── InvalidPhoneNumber          400 invalid_phone_number
    │   └── InvalidCodeFormat           400 invalid_code_format (costs no attempt)
    ├── Unauthorized                    401 unauthorized
    ├── DestinationNotAllowed           403 destination_not_allowed
    ├── VerificationNotFound            404 verification_not_found
    ├── IdempotencyConflict             409 idempotency_conflict
    ├── PayloadTooLarge                 413 payload_too_large
    ├── UnsupportedMediaType            415 unsupported_media_type
    ├── TooManyRequests                 429, any code (never retried by the client)
    │   ├── RateLimited                 429 rate_limited
    │   ├── ResendTooSoon               429 resend_too_soon
    │   ├── MaxSendsReached             429 max_sends_reached
    │   └── FraudSuspected              429 fraud_suspected
    ├── ServiceUnavailable              503 service_unavailable (retried after Retry-After)
    ├── Overloaded                      503 overloaded (retried after Retry-After)
    ├── UnexpectedResponse              a 2xx answer whose body is not what the route returns
    └── TransportError                  no answer at all: connection refused, reset, timeout

A code the client does not know yet (a newer service) becomes a TooManyRequests when its
status is 429 and an OtpServiceError otherwise, with the `status` and `code` the service sent.

Messages hold only what the service wrote in `detail` (which never carries an OTP code or a
full phone number) and names of the client's own; never a request body, so never a code.
"""

from __future__ import annotations

import email.utils
import math
import time
from collections.abc import Mapping
from typing import ClassVar

import msgspec


class OtpServiceError(Exception):
    """A call to the service failed.

    Attributes:
        status: the HTTP status of the answer (0 when no answer came: TransportError).
        code: the problem's stable `code`, such as "resend_too_soon"; "" when the answer was
            not a problem document (a proxy's error page, say).
        detail: what happened, for people (the service's `detail`).
        retry_after: seconds the service asked to wait (its Retry-After), else None.
    """

    default_status: ClassVar[int] = 0
    default_code: ClassVar[str] = ""

    def __init__(
        self,
        detail: str,
        *,
        status: int | None = None,
        code: str | None = None,
        retry_after: int | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.status = self.default_status if status is None else status
        self.code = self.default_code if code is None else code
        self.retry_after = retry_after

    def __str__(self) -> str:
        head = f"{self.status} {self.code}" if self.code else str(self.status)
        wait = f" (retry after {self.retry_after} s)" if self.retry_after is not None else ""
        return f"{head}: {self.detail}{wait}"

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(status={self.status!r}, code={self.code!r},"
            f" detail={self.detail!r}, retry_after={self.retry_after!r})"
        )


class InvalidRequest(OtpServiceError):
    default_status = 400
    default_code = "invalid_request"


class InvalidPhoneNumber(InvalidRequest):
    default_code = "invalid_phone_number"


class InvalidCodeFormat(InvalidRequest):
    default_code = "invalid_code_format"


class Unauthorized(OtpServiceError):
    default_status = 401
    default_code = "unauthorized"


class DestinationNotAllowed(OtpServiceError):
    default_status = 403
    default_code = "destination_not_allowed"


class VerificationNotFound(OtpServiceError):
    default_status = 404
    default_code = "verification_not_found"


class IdempotencyConflict(OtpServiceError):
    default_status = 409
    default_code = "idempotency_conflict"


class PayloadTooLarge(OtpServiceError):
    default_status = 413
    default_code = "payload_too_large"


class UnsupportedMediaType(OtpServiceError):
    default_status = 415
    default_code = "unsupported_media_type"


class TooManyRequests(OtpServiceError):
    """Any 429. The client never retries one by itself: `retry_after` says when the caller may."""

    default_status = 429


class RateLimited(TooManyRequests):
    default_code = "rate_limited"


class ResendTooSoon(TooManyRequests):
    default_code = "resend_too_soon"


class MaxSendsReached(TooManyRequests):
    default_code = "max_sends_reached"


class FraudSuspected(TooManyRequests):
    """The fraud guard refused the send; `detail` names the rule (for your logs, not users)."""

    default_code = "fraud_suspected"


class ServiceUnavailable(OtpServiceError):
    """The service cannot reach its store. Raised once the client's retries are used up."""

    default_status = 503
    default_code = "service_unavailable"


class Overloaded(OtpServiceError):
    """The service shed the call before doing any work. Raised once the retries are used up."""

    default_status = 503
    default_code = "overloaded"


class UnexpectedResponse(OtpServiceError):
    """A success status whose body is not what the route returns (a proxy in the way, or a
    service newer than this client in an incompatible way)."""


class TransportError(OtpServiceError):
    """No answer: the connection failed, was reset or timed out (status 0). The original
    httpx exception is the `__cause__`."""

    default_code = "transport_error"


PROBLEM_CLASSES: Mapping[str, type[OtpServiceError]] = {
    cls.default_code: cls
    for cls in (
        InvalidRequest,
        InvalidPhoneNumber,
        InvalidCodeFormat,
        Unauthorized,
        DestinationNotAllowed,
        VerificationNotFound,
        IdempotencyConflict,
        PayloadTooLarge,
        UnsupportedMediaType,
        RateLimited,
        ResendTooSoon,
        MaxSendsReached,
        FraudSuspected,
        ServiceUnavailable,
        Overloaded,
    )
}
"""The class of each problem `code` the service can answer on the /otp routes."""


class _Problem(msgspec.Struct):
    code: str = ""
    detail: str = ""
    title: str = ""


_problem_decoder = msgspec.json.Decoder(_Problem)


def parse_retry_after(value: str | None, *, now: float | None = None) -> int | None:
    """Retry-After in whole seconds (delay-seconds or an HTTP-date), or None when absent or
    unreadable."""
    if value is None:
        return None
    text = value.strip()
    if text.isascii() and text.isdigit():
        return int(text)
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None
    seconds = when.timestamp() - (time.time() if now is None else now)
    return max(0, math.ceil(seconds))


def from_response(status: int, headers: Mapping[str, str], body: bytes) -> OtpServiceError:
    """The error for a non-2xx answer: the class of its problem `code`, else by status."""
    retry_after = parse_retry_after(headers.get("retry-after"))
    try:
        problem = _problem_decoder.decode(body)
    except msgspec.MsgspecError:
        problem = _Problem()
    detail = problem.detail or problem.title or f"HTTP {status} without a problem document"
    cls = PROBLEM_CLASSES.get(problem.code)
    if cls is None or cls.default_status != status:
        cls = TooManyRequests if status == 429 else OtpServiceError
    return cls(detail, status=status, code=problem.code, retry_after=retry_after)
