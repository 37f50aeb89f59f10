"""What the service returns, as typed, immutable msgspec Structs mirroring its OpenAPI schemas
(Verification, DeliveryOut, DeliveryEventOut, CheckResult, Signals); timestamps are aware
datetimes in UTC.

Fields the service adds later are ignored, so a newer service does not break this client;
`tests/clients/test_models_mirror_openapi.py` holds these types to the service's document.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

import msgspec

VerificationStatus = Literal["pending", "approved", "failed", "canceled", "expired"]
CheckStatus = Literal["approved", "pending", "failed"]
DeliveryStatus = Literal[
    "queued", "submitted", "delivered", "undelivered", "expired", "rejected", "failed"
]
DeliveryEventStatus = Literal[
    "queued",
    "submitted",
    "delivered",
    "undelivered",
    "expired",
    "rejected",
    "failed",
    "unknown",
    "flagged",
]
"""`flagged`: the service's fraud guard would have refused this send (its monitor mode); the
rule is in `provider_status`, its figures in `detail`."""


class Signals(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """What your login backend knows of the end user, for the service's per-IP limits and
    fraud rules (`POST /otp/start`'s `signals`). Never logged in full by the service."""

    ip: str | None = None
    """The end user's IPv4 or IPv6 address as your backend saw it."""
    device_id: str | None = None
    """An opaque id of the end user's device (at most 128 characters)."""
    user_agent: str | None = None
    """The end user's browser or app (at most 512 characters)."""


class DeliveryEvent(msgspec.Struct, frozen=True, kw_only=True):
    """One step of one SMS's delivery."""

    status: DeliveryEventStatus
    at: datetime
    send: int
    """1 for the verification's first SMS, 2 for its first resend, ..."""
    provider: str | None = None
    provider_status: str | None = None
    """The provider's own word for the status, such as DELIVRD or UNDELIV."""
    error_code: str | None = None
    """The provider's or the operator's error code, such as 034."""
    detail: str | None = None
    """A `flagged` event's reason: the fraud guard's rule and figures."""


class Delivery(msgspec.Struct, frozen=True, kw_only=True):
    """Where the latest SMS is; `events` holds every event of every send."""

    status: DeliveryStatus
    updated_at: datetime
    events: tuple[DeliveryEvent, ...] = ()
    """Empty where the service leaves events out (event webhooks' `data`)."""


class Verification(msgspec.Struct, frozen=True, kw_only=True):
    """A verification as the service shows it: never its code."""

    id: str
    to: str
    """E.164."""
    status: VerificationStatus
    channel: Literal["sms"]
    created_at: datetime
    expires_at: datetime
    attempts_left: int
    sends: int
    sends_left: int
    resend_available_at: datetime | None
    """When a new code may be sent; None when none can be (finished, or no sends left)."""
    delivery: Delivery
    client_ref: str | None = None
    replayed: bool = False
    """Not a field of the service's body: True when `start` got the stored answer of an earlier
    request with the same Idempotency-Key (the `Idempotent-Replayed: true` header): nothing was
    sent this time."""


class CheckResult(msgspec.Struct, frozen=True, kw_only=True):
    """The answer to a code check. `valid` is True at most once per verification."""

    id: str
    status: CheckStatus
    valid: bool
    attempts_left: int
