"""Wire types of the client API (msgspec Structs): what /otp/* accepts and returns.

They are also the OpenAPI document's schemas (api/openapi.py refines what Litestar makes of
them): every constraint stated here is one the server enforces, and every example is real.
"""

from __future__ import annotations

import functools
from datetime import UTC, datetime
from typing import Annotated, Literal, cast

import msgspec

from otpservice.domain.message import APP_HASH_PATTERN
from otpservice.domain.phone import API_NUMBER_PATTERN
from otpservice.usecases.ports import DeliveryEvent
from otpservice.views import CheckView, DeliveryStatusName, VerificationStatus, VerificationView

EXAMPLE_ID = "uceqclckndmbxtxhdx5xw4esmu3cn72yzvqc5k4rh4"
EXAMPLE_TIME = "2026-11-23T10:00:00Z"


def _documented(
    description: str, *, examples: list[object] | None = None, **schema: object
) -> msgspec.Meta:
    """Documentation only: constraints the use cases check themselves (so that they answer with
    their own error codes, such as invalid_phone_number) and formats msgspec does not know."""
    extra: dict[str, object] = {"description": description, "extra": schema}
    if examples:
        extra["examples"] = examples
    return msgspec.Meta(extra_json_schema=extra)


Phone = Annotated[
    str,
    msgspec.Meta(min_length=2, max_length=32),
    _documented(
        "E.164: '+', the country code and the number; spaces, '-', '.' and '()' between the"
        " digits are ignored. A number that is not valid is 400 invalid_phone_number.",
        examples=["+48601234567"],
        pattern=API_NUMBER_PATTERN,
    ),
]
Code = Annotated[
    str,
    msgspec.Meta(min_length=1, max_length=32),
    _documented(
        "The code from the SMS: ASCII digits, as many as the tenant's code_length (6 by"
        " default). Any other shape is 400 invalid_code_format and costs no attempt.",
        examples=["123456"],
        pattern="^[0-9]{4,10}$",
    ),
]
VerificationId = Annotated[
    str,
    msgspec.Meta(min_length=1, max_length=64),
    _documented("The verification's opaque id.", examples=[EXAMPLE_ID]),
]
Timestamp = Annotated[
    str, _documented("RFC 3339, UTC, whole seconds.", examples=[EXAMPLE_TIME], format="date-time")
]
EventStatus = Literal[
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
"""`flagged`: the fraud guard would have refused this send (monitor mode); its rule is in
`provider_status` and its figures in `detail`."""


class Signals(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """What the login backend knows of the end user. Never logged in full, never a metric."""

    ip: (
        Annotated[
            str,
            msgspec.Meta(min_length=2, max_length=45),
            _documented(
                "The end user's IPv4 or IPv6 address as the login backend saw it: used instead of"
                " the connection's address for the per-IP limits and fraud rules.",
                examples=["203.0.113.7"],
            ),
        ]
        | None
    ) = None
    device_id: Annotated[str, msgspec.Meta(min_length=1, max_length=128)] | None = None
    """An opaque id of the end user's device."""
    user_agent: Annotated[str, msgspec.Meta(min_length=1, max_length=512)] | None = None
    """The end user's browser or app, as the login backend saw it."""


class StartRequest(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    to: Phone
    """The number to verify."""
    locale: (
        Annotated[
            str,
            msgspec.Meta(min_length=2, max_length=35),
            _documented(
                "BCP 47 tag of the SMS language; else the number's country's, then the"
                " tenant's default.",
                examples=["pl", "pt-BR"],
            ),
        ]
        | None
    ) = None
    app_hash: (
        Annotated[
            str,
            msgspec.Meta(min_length=11, max_length=11),
            _documented(
                "Android SMS Retriever app hash: it becomes the SMS's last line.",
                examples=["FA+9qCX9VSu"],
                pattern=APP_HASH_PATTERN,
            ),
        ]
        | None
    ) = None
    client_ref: Annotated[str, msgspec.Meta(max_length=64)] | None = None
    """Your own reference, echoed back."""
    signals: Signals | None = None
    """The end user's context, for limits and fraud rules."""


class VerifyRequest(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Exactly one of `id` and `to`."""

    code: Code
    id: VerificationId | None = None
    to: Phone | None = None


class DeliveryEventOut(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    status: EventStatus
    at: Timestamp
    send: int
    """1 for the verification's first SMS, 2 for its first resend, ..."""
    provider: str | None
    provider_status: str | None
    """The provider's own word for the status, such as DELIVRD or UNDELIV."""
    error_code: str | None
    """The provider's or the operator's error code, such as 034."""
    detail: str | None = None
    """A `flagged` event's reason: the fraud guard's rule and figures."""


class DeliveryOut(msgspec.Struct, frozen=True, kw_only=True):
    status: DeliveryStatusName
    """The latest SMS's delivery status."""
    updated_at: Timestamp
    events: list[DeliveryEventOut]


class Verification(msgspec.Struct, frozen=True, kw_only=True):
    id: VerificationId
    to: Annotated[str, _documented("E.164.", examples=["+48601234567"])]
    status: VerificationStatus
    channel: Literal["sms"]
    created_at: Timestamp
    expires_at: Timestamp
    attempts_left: int
    sends: int
    sends_left: int
    resend_available_at: Timestamp | None
    """When a new code may be sent; null when none can be (finished, or no sends left)."""
    delivery: DeliveryOut
    client_ref: str | None


class CheckResult(msgspec.Struct, frozen=True, kw_only=True):
    id: VerificationId
    status: Literal["approved", "pending", "failed"]
    valid: bool
    attempts_left: int


class Health(msgspec.Struct, frozen=True):
    status: Literal["ok", "ready"]


def iso(ms: int) -> str:
    """RFC 3339 UTC with seconds, as the contract shows: 2026-11-23T10:00:00Z."""
    return _iso_second(ms // 1000)


@functools.lru_cache(maxsize=4096)
def _iso_second(second: int) -> str:
    # Cached: a response formats several times that are mostly recent seconds, and strftime
    # was a twentieth of a GET's CPU.
    return datetime.fromtimestamp(second, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def verification_out(view: VerificationView) -> Verification:
    return Verification(
        id=view.id,
        to=view.to,
        status=view.status,
        channel="sms",
        created_at=iso(view.created_ms),
        expires_at=iso(view.expires_ms),
        attempts_left=view.attempts_left,
        sends=view.sends,
        sends_left=view.sends_left,
        resend_available_at=(
            # Rounded up: a client that waits until this second must not be told "too soon".
            iso(-(-view.resend_available_ms // 1000) * 1000)
            if view.resend_available_ms is not None
            else None
        ),
        delivery=DeliveryOut(
            status=view.delivery_status,
            updated_at=iso(view.delivery_updated_ms),
            events=[delivery_event_out(e) for e in view.events],
        ),
        client_ref=view.client_ref,
    )


def delivery_event_out(event: DeliveryEvent) -> DeliveryEventOut:
    return DeliveryEventOut(
        status=cast("EventStatus", event.status),
        at=iso(event.at_ms),
        send=event.send,
        provider=event.provider,
        provider_status=event.provider_status,
        error_code=event.error_code,
        detail=event.detail or None,
    )


def check_out(view: CheckView) -> CheckResult:
    return CheckResult(
        id=view.id, status=view.status, valid=view.valid, attempts_left=view.attempts_left
    )
