"""What the use cases return: the client's view of a verification, derived from a stored record
at the store's current time, and the result of a check. The API turns them into wire types."""

from __future__ import annotations

from typing import Literal, cast

import msgspec

from otpservice.usecases.ports import DeliveryEvent, VerificationRecord

VerificationStatus = Literal["pending", "approved", "failed", "canceled", "expired"]
DeliveryStatusName = Literal[
    "queued", "submitted", "delivered", "undelivered", "expired", "rejected", "failed"
]
"""A send's delivery status (domain/delivery.py; `unknown` is an event's status only)."""


class VerificationView(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    to: str
    status: VerificationStatus
    """A pending verification past its expiry is `expired`."""
    created_ms: int
    expires_ms: int
    attempts_left: int
    sends: int
    sends_left: int
    resend_available_ms: int | None
    delivery_status: DeliveryStatusName
    delivery_updated_ms: int
    client_ref: str | None
    events: tuple[DeliveryEvent, ...] = ()


class CheckView(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    status: Literal["approved", "pending", "failed"]
    valid: bool
    attempts_left: int


def verification_view(
    verification_id: str,
    record: VerificationRecord,
    events: tuple[DeliveryEvent, ...],
    now_ms: int,
) -> VerificationView:
    status: VerificationStatus = record.status
    if status == "pending" and now_ms >= record.expires_ms:
        status = "expired"
    sends_left = max(0, record.max_sends - record.sends)
    resend_at = (
        max(record.next_resend_ms, now_ms) if status == "pending" and sends_left > 0 else None
    )
    return VerificationView(
        id=verification_id,
        to=record.to,
        status=status,
        created_ms=record.created_ms,
        expires_ms=record.expires_ms,
        attempts_left=max(0, record.attempts_left),
        sends=record.sends,
        sends_left=sends_left,
        resend_available_ms=resend_at,
        # The store writes only statuses of domain/delivery.py.
        delivery_status=cast("DeliveryStatusName", record.delivery_status),
        delivery_updated_ms=record.delivery_updated_ms,
        client_ref=record.client_ref,
        events=events,
    )
