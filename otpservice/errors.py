"""Every error the service raises on purpose, each with its stable `code` and HTTP status.

One exception handler (api/problems.py) turns them into RFC 9457 problem+json. The tree:

    OtpError
    ├── InvalidRequest                  400 invalid_request
    │   ├── InvalidPhoneNumber          400 invalid_phone_number
    │   └── InvalidCodeFormat           400 invalid_code_format
    ├── Unauthorized                    401 unauthorized
    ├── DestinationNotAllowed           403 destination_not_allowed
    ├── VerificationNotFound            404 verification_not_found
    ├── NotFound                        404 not_found (a route that is not there for you)
    ├── IdempotencyConflict             409 idempotency_conflict
    ├── PayloadTooLarge                 413 payload_too_large
    ├── UnsupportedMediaType            415 unsupported_media_type
    ├── TooManyRequests                 429 (carries retry_after)
    │   ├── RateLimited                 429 rate_limited
    │   ├── ResendTooSoon               429 resend_too_soon
    │   ├── MaxSendsReached             429 max_sends_reached
    │   └── FraudSuspected              429 fraud_suspected
    ├── ServiceUnavailable              503 service_unavailable (carries retry_after)
    └── Overloaded                      503 overloaded (carries retry_after)

    ProviderError (not an OtpError: it never reaches a client; the dispatcher handles it)
    ├── ProviderRejected               the provider refused the SMS for good (4xx but 429)
    └── ProviderUnavailable            worth retrying: 429, 5xx, timeout, connection error

    ConfigError                         settings are wrong; raised at start-up with every problem,
                                        each naming its setting
"""

from __future__ import annotations

from typing import ClassVar


class OtpError(Exception):
    """Root of the errors a client can see."""

    code: ClassVar[str] = "internal_error"
    status: ClassVar[int] = 500
    title: ClassVar[str] = "Internal error"

    def __init__(self, detail: str | None = None) -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title


class InvalidRequest(OtpError):
    code = "invalid_request"
    status = 400
    title = "The request is malformed"


class InvalidPhoneNumber(InvalidRequest):
    code = "invalid_phone_number"
    title = "The phone number is not valid"


class InvalidCodeFormat(InvalidRequest):
    code = "invalid_code_format"
    title = "The code has the wrong format"


class Unauthorized(OtpError):
    code = "unauthorized"
    status = 401
    title = "Missing or wrong credentials"


class DestinationNotAllowed(OtpError):
    code = "destination_not_allowed"
    status = 403
    title = "This destination is not allowed"


class VerificationNotFound(OtpError):
    code = "verification_not_found"
    status = 404
    title = "No such verification"

    def __init__(self) -> None:
        # Always the same text: the answer must not tell an unknown id from a finished one.
        super().__init__("The verification does not exist, has expired or is finished.")


class NotFound(OtpError):
    """A route that does not exist here, such as the webhook of a provider not configured."""

    code = "not_found"
    status = 404
    title = "No such resource"


class IdempotencyConflict(OtpError):
    code = "idempotency_conflict"
    status = 409
    title = "Idempotency-Key reused with a different request"


class PayloadTooLarge(OtpError):
    code = "payload_too_large"
    status = 413
    title = "The request body is too large"


class UnsupportedMediaType(OtpError):
    code = "unsupported_media_type"
    status = 415
    title = "The request body must be JSON"


class TooManyRequests(OtpError):
    status = 429

    def __init__(self, retry_after: int, detail: str | None = None) -> None:
        super().__init__(detail)
        self.retry_after = max(1, int(retry_after))


class RateLimited(TooManyRequests):
    code = "rate_limited"
    title = "Too many requests"

    def __init__(self, retry_after: int, scope: str, detail: str | None = None) -> None:
        super().__init__(retry_after, detail)
        self.scope = scope


class ResendTooSoon(TooManyRequests):
    code = "resend_too_soon"
    title = "A new code cannot be sent yet"


class MaxSendsReached(TooManyRequests):
    code = "max_sends_reached"
    title = "No more codes can be sent for this verification"


class FraudSuspected(TooManyRequests):
    """The fraud guard refused the send; `detail` names the rule and its figures (for the
    tenant's logs, not for end users)."""

    code = "fraud_suspected"
    title = "The fraud guard refused to send a code here for now"

    def __init__(self, retry_after: int, detail: str, rule: str) -> None:
        super().__init__(retry_after, detail)
        self.rule = rule


class ServiceUnavailable(OtpError):
    code = "service_unavailable"
    status = 503
    title = "The service is temporarily unavailable"

    def __init__(self, detail: str | None = None, retry_after: int = 1) -> None:
        super().__init__(detail)
        self.retry_after = max(1, int(retry_after))


class Overloaded(OtpError):
    """This process has more work queued than it can do in time: shed, before any hashing.

    Not ServiceUnavailable: the store is fine, and a client should simply come back."""

    code = "overloaded"
    status = 503
    title = "The service is overloaded"

    def __init__(self, detail: str | None = None, retry_after: int = 1) -> None:
        super().__init__(detail or "Too many requests are being processed; retry shortly.")
        self.retry_after = max(1, int(retry_after))


class ProviderError(Exception):
    """A provider call did not deliver the SMS to the provider."""

    def __init__(self, reason: str, *, code: str | None = None, message: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code
        self.message = message


class ProviderRejected(ProviderError):
    """The provider refused the message for good; retrying would not help."""


class ProviderUnavailable(ProviderError):
    """The provider could not take the message now; a retry may succeed."""


class ConfigError(Exception):
    """Settings are missing or wrong. Each problem names its setting; `problems` holds every
    one found in a run (load_settings collects them instead of stopping at the first)."""

    def __init__(self, *problems: str) -> None:
        super().__init__("\n".join(problems))
        self.problems: tuple[str, ...] = problems
