"""Delivery status rules: what a provider's report means and whether it may move the status.

The first terminal status wins; store/lua mirrors `STATUS_RANK` to apply the same rule atomically.
"""

from __future__ import annotations

from enum import StrEnum
from types import MappingProxyType
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from collections.abc import Mapping


class DeliveryStatus(StrEnum):
    QUEUED = "queued"
    SUBMITTED = "submitted"
    DELIVERED = "delivered"
    UNDELIVERED = "undelivered"
    EXPIRED = "expired"
    REJECTED = "rejected"
    FAILED = "failed"
    """The provider never accepted the SMS while the code was valid (set by the service)."""
    UNKNOWN = "unknown"
    """An event status only: a report the service could not read. It never moves the status."""


TERMINAL: Final = frozenset(
    {
        DeliveryStatus.DELIVERED,
        DeliveryStatus.UNDELIVERED,
        DeliveryStatus.EXPIRED,
        DeliveryStatus.REJECTED,
        DeliveryStatus.FAILED,
    }
)

# Judge this on the status after `next_status`, not on the raw report: an UNDELIV arriving after
# DELIVRD leaves the status delivered, and must not open the way to another send.
RESEND_UNLOCKING: Final = frozenset(
    {
        DeliveryStatus.UNDELIVERED,
        DeliveryStatus.EXPIRED,
        DeliveryStatus.REJECTED,
        DeliveryStatus.FAILED,
    }
)

STATUS_RANK: Final[Mapping[DeliveryStatus, int]] = MappingProxyType(
    {
        DeliveryStatus.UNKNOWN: 0,
        DeliveryStatus.QUEUED: 1,
        DeliveryStatus.SUBMITTED: 2,
        # Terminals share the top rank so that none of them can replace another.
        DeliveryStatus.DELIVERED: 3,
        DeliveryStatus.UNDELIVERED: 3,
        DeliveryStatus.EXPIRED: 3,
        DeliveryStatus.REJECTED: 3,
        DeliveryStatus.FAILED: 3,
    }
)
"""A report moves the status only when its rank is strictly higher than the current one."""


def is_terminal(status: DeliveryStatus) -> bool:
    return status in TERMINAL


def next_status(current: DeliveryStatus, reported: DeliveryStatus) -> DeliveryStatus:
    """Return the delivery status after `reported` arrives: see `STATUS_RANK`."""
    return reported if STATUS_RANK[reported] > STATUS_RANK[current] else current


_PROVIDER_WORDS: Final[Mapping[str, DeliveryStatus]] = MappingProxyType(
    {
        **dict.fromkeys(
            ("delivered", "delivrd", "deliver", "success", "sent-to-handset"),
            DeliveryStatus.DELIVERED,
        ),
        **dict.fromkeys(
            (
                "undelivered",
                "undeliv",
                "undeliverable",
                "failed-delivery",
                "not-delivered",
                # A provider that reports "failed" had accepted the message, so this is a delivery
                # failure; the service's own FAILED (never accepted) is not set from reports.
                "failed",
                # SMPP DELETED: cancelled or purged at the SMSC; it will not arrive, and the user
                # needs the resend that UNDELIVERED allows.
                "deleted",
            ),
            DeliveryStatus.UNDELIVERED,
        ),
        "expired": DeliveryStatus.EXPIRED,
        **dict.fromkeys(("rejected", "rejectd"), DeliveryStatus.REJECTED),
        **dict.fromkeys(
            (
                "accepted",
                "acceptd",
                "enroute",
                "buffered",
                "sent",
                "submitted",
                "pending",
                # A provider's own "queued" means it holds the message: accepted, from our side.
                "queued",
                "queued-at-smsc",
            ),
            DeliveryStatus.SUBMITTED,
        ),
        "unknown": DeliveryStatus.UNKNOWN,
    }
)

# Kannel DLR mask values, as Kannel-style gateways post them in `type` / `%d`.
_DLR_MASK: Final[Mapping[int, DeliveryStatus]] = MappingProxyType(
    {
        1: DeliveryStatus.DELIVERED,
        2: DeliveryStatus.UNDELIVERED,
        4: DeliveryStatus.SUBMITTED,  # buffered at the SMSC
        8: DeliveryStatus.SUBMITTED,  # submitted to the SMSC
        16: DeliveryStatus.REJECTED,  # rejected by the SMSC
    }
)


def normalize_provider_status(raw: str | int | None) -> DeliveryStatus:
    """Read a provider's status word or Kannel DLR code; UNKNOWN for anything else. Never raises."""
    # bool is an int: True must not read as DLR code 1 (delivered).
    if isinstance(raw, int) and not isinstance(raw, bool):
        return _DLR_MASK.get(raw, DeliveryStatus.UNKNOWN)
    if not isinstance(raw, str):
        return DeliveryStatus.UNKNOWN
    word = "-".join(raw.lower().replace("_", " ").replace("-", " ").split())
    # The length cap keeps int() away from its digit limit, which would raise.
    if word.isascii() and word.isdigit() and len(word) <= 3:
        return _DLR_MASK.get(int(word), DeliveryStatus.UNKNOWN)
    return _PROVIDER_WORDS.get(word, DeliveryStatus.UNKNOWN)
