"""Wire types of the client API (msgspec Structs): what /otp/* accepts and returns."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import msgspec

from otpservice.views import CheckView, VerificationView

Phone = Annotated[str, msgspec.Meta(min_length=2, max_length=32, examples=["+48601234567"])]
Code = Annotated[str, msgspec.Meta(min_length=1, max_length=32, examples=["123456"])]
VerificationId = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]


class StartRequest(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    to: Phone
    """E.164 number with the leading '+'."""
    locale: Annotated[str, msgspec.Meta(min_length=2, max_length=35)] | None = None
    """BCP 47 tag such as 'pl'; else the number's country, then the tenant's default."""
    app_hash: Annotated[str, msgspec.Meta(min_length=11, max_length=11)] | None = None
    """Android SMS Retriever app hash (11 characters)."""
    client_ref: Annotated[str, msgspec.Meta(max_length=64)] | None = None
    """Your own reference, echoed back."""


class VerifyRequest(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    code: Code
    id: VerificationId | None = None
    to: Phone | None = None


class DeliveryEventOut(msgspec.Struct, frozen=True, kw_only=True):
    status: str
    at: str
    send: int
    provider: str | None
    provider_status: str | None
    error_code: str | None


class DeliveryOut(msgspec.Struct, frozen=True, kw_only=True):
    status: str
    """queued, submitted, delivered, undelivered, expired, rejected or failed."""
    updated_at: str
    events: list[DeliveryEventOut]


class Verification(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    to: str
    status: str
    """pending, approved, failed, canceled or expired."""
    channel: str
    created_at: str
    expires_at: str
    attempts_left: int
    sends: int
    sends_left: int
    resend_available_at: str | None
    delivery: DeliveryOut
    client_ref: str | None


class CheckResult(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    status: str
    valid: bool
    attempts_left: int


class Health(msgspec.Struct, frozen=True):
    status: str


def iso(ms: int) -> str:
    """RFC 3339 UTC with seconds, as the contract shows: 2026-11-23T10:00:00Z."""
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


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
            events=[
                DeliveryEventOut(
                    status=e.status,
                    at=iso(e.at_ms),
                    send=e.send,
                    provider=e.provider,
                    provider_status=e.provider_status,
                    error_code=e.error_code,
                )
                for e in view.events
            ],
        ),
        client_ref=view.client_ref,
    )


def check_out(view: CheckView) -> CheckResult:
    return CheckResult(
        id=view.id, status=view.status, valid=view.valid, attempts_left=view.attempts_left
    )
