"""Typed Python client of otpservice: `Client` (blocking) and `AsyncClient` (asyncio), the
models they return, one exception per problem code, and `verify_webhook` for event webhooks.

    with Client("https://otp.example.com", api_key) as otp:
        verification = otp.start("+48601234567", idempotency_key=True)
        result = otp.verify(code_from_user, id=verification.id)
"""

from otpservice_client._calls import new_idempotency_key
from otpservice_client._version import __version__
from otpservice_client.client import AsyncClient, Client
from otpservice_client.errors import (
    DestinationNotAllowed,
    FraudSuspected,
    IdempotencyConflict,
    InvalidCodeFormat,
    InvalidPhoneNumber,
    InvalidRequest,
    MaxSendsReached,
    OtpServiceError,
    Overloaded,
    PayloadTooLarge,
    RateLimited,
    ResendTooSoon,
    ServiceUnavailable,
    TooManyRequests,
    TransportError,
    Unauthorized,
    UnexpectedResponse,
    UnsupportedMediaType,
    VerificationNotFound,
)
from otpservice_client.models import (
    CheckResult,
    Delivery,
    DeliveryEvent,
    Signals,
    Verification,
)
from otpservice_client.webhooks import (
    EVENT_TYPES,
    Event,
    WebhookPayloadError,
    WebhookSignatureError,
    WebhookTimestampError,
    WebhookVerificationError,
    verify_webhook,
)

__all__ = [
    "EVENT_TYPES",
    "AsyncClient",
    "CheckResult",
    "Client",
    "Delivery",
    "DeliveryEvent",
    "DestinationNotAllowed",
    "Event",
    "FraudSuspected",
    "IdempotencyConflict",
    "InvalidCodeFormat",
    "InvalidPhoneNumber",
    "InvalidRequest",
    "MaxSendsReached",
    "OtpServiceError",
    "Overloaded",
    "PayloadTooLarge",
    "RateLimited",
    "ResendTooSoon",
    "ServiceUnavailable",
    "Signals",
    "TooManyRequests",
    "TransportError",
    "Unauthorized",
    "UnexpectedResponse",
    "UnsupportedMediaType",
    "Verification",
    "VerificationNotFound",
    "WebhookPayloadError",
    "WebhookSignatureError",
    "WebhookTimestampError",
    "WebhookVerificationError",
    "__version__",
    "new_idempotency_key",
    "verify_webhook",
]
