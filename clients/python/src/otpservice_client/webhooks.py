"""Check the service's signed event webhooks (Standard Webhooks) and read them as `Event`s.

The service POSTs each event to the tenant's `events_url` with the headers `webhook-id`,
`webhook-timestamp` and `webhook-signature` (`v1,<base64 HMAC-SHA256 of "id.timestamp.body">`
under the tenant's `whsec_...` secret). `verify_webhook` checks them with the `standardwebhooks`
library before a byte of the body is trusted. Delivery is at least once: de-duplicate by
`Event.webhook_id`.
"""

from __future__ import annotations

import binascii
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final

import msgspec

from otpservice_client.models import Verification

EVENT_TYPES: Final = frozenset(
    {
        "verification.approved",
        "verification.failed",
        "verification.expired",
        "verification.canceled",
        "delivery.updated",
        "fraud.blocked",
    }
)
"""The event types the service sends today. `Event.type` is a plain str: a type added later
still verifies, and your handler can ignore it."""


class WebhookVerificationError(Exception):
    """The request is not a genuine, fresh event from the service: answer it 400 and drop it."""


class WebhookSignatureError(WebhookVerificationError):
    """A header is missing, or no signature matches the body under the secret."""


class WebhookTimestampError(WebhookVerificationError):
    """`webhook-timestamp` is more than 5 minutes away from now: a replay, or a clock off."""


class WebhookPayloadError(WebhookVerificationError):
    """Signed by the service, but the body is not an event this client can read."""


class Event(msgspec.Struct, frozen=True, kw_only=True):
    """One event. `data` is the verification (without delivery events) plus what the type
    needs, as the service sent it; `verification()` reads it as a `Verification`."""

    id: str
    """The event's id, `evt_...`."""
    type: str
    """One of EVENT_TYPES (or a type newer than this client)."""
    created_at: datetime
    data: dict[str, Any]
    webhook_id: str = ""
    """The `webhook-id` header: the same for every delivery attempt of one event."""

    def verification(self) -> Verification:
        """`data` as a Verification; WebhookPayloadError if it is not one (fraud.blocked may
        carry no verification)."""
        try:
            return msgspec.convert(self.data, Verification)
        except msgspec.ValidationError as exc:
            raise WebhookPayloadError(f"event data is not a verification: {exc}") from None


_event_decoder = msgspec.json.Decoder(Event)


def verify_webhook(payload: bytes, headers: Mapping[str, str], secret: str) -> Event:
    """The event in `payload` once its signature and timestamp check out.

    Args:
        payload: the request body exactly as received (bytes, before any JSON parsing).
        headers: the request headers (any case).
        secret: the tenant's `events_secret`, `whsec_` + base64.

    Raises:
        WebhookSignatureError: a missing header or a signature that does not match.
        WebhookTimestampError: a timestamp more than 5 minutes from now.
        WebhookPayloadError: a genuine request whose body is not an event.
        ValueError: `secret` is not a Standard Webhooks secret (a setting to fix).
    """
    # Imported here, not at the top: the rest of the client works where only httpx and msgspec
    # are installed (the service's own test environment imports the client from source).
    from standardwebhooks.webhooks import (  # noqa: PLC0415
        EmptyWebhookSecretError,
        Webhook,
    )
    from standardwebhooks.webhooks import (  # noqa: PLC0415
        WebhookVerificationError as NotVerified,
    )

    try:
        webhook = Webhook(secret)
    except (binascii.Error, ValueError, RuntimeError, EmptyWebhookSecretError):
        # The secret's text stays out of the message.
        raise ValueError("secret must be 'whsec_' followed by base64 of the key") from None
    lowered = {name.lower(): value for name, value in headers.items()}
    try:
        webhook.verify(payload, lowered, json_parse=False)
    except NotVerified as exc:
        reason = str(exc)
        if "timestamp too" in reason:
            raise WebhookTimestampError(f"webhook {reason.lower()}") from None
        raise WebhookSignatureError(f"webhook signature not verified: {reason}") from None
    except UnicodeDecodeError:
        raise WebhookSignatureError(
            "webhook body is not UTF-8: not signed by the service"
        ) from None
    except (ValueError, binascii.Error):
        # standardwebhooks unpacks "v1,<sig>" and decodes base64 without guarding either.
        raise WebhookSignatureError("webhook-signature is malformed") from None
    try:
        event = _event_decoder.decode(payload)
    except msgspec.MsgspecError as exc:
        raise WebhookPayloadError(f"webhook body is not an event: {exc}") from None
    return msgspec.structs.replace(event, webhook_id=lowered["webhook-id"])
