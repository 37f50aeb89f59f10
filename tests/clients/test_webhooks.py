"""verify_webhook accepts exactly what the service signs the Standard Webhooks way, and refuses
a wrong signature, a stale or future timestamp and a missing header. Signed here with the
`standardwebhooks` library itself, as the service will sign."""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from otpservice_client import (
    EVENT_TYPES,
    Event,
    Verification,
    WebhookPayloadError,
    WebhookSignatureError,
    WebhookTimestampError,
    WebhookVerificationError,
    verify_webhook,
)

from tests.clients.fakes import VERIFICATION_ID, verification_json
from tests.clients.support import client_requirement, importable

SECRET = "whsec_" + base64.b64encode(os.urandom(32)).decode()
OTHER_SECRET = "whsec_" + base64.b64encode(os.urandom(32)).decode()


@pytest.fixture(scope="module", autouse=True)
def _standardwebhooks(python_packages: Path) -> Iterator[None]:
    requirement = client_requirement("standardwebhooks")
    with importable("standardwebhooks", requirement, python_packages / "standardwebhooks"):
        yield


def event_body(event_type: str = "verification.approved", **data) -> bytes:
    verification = verification_json(status="approved")
    del verification["delivery"]["events"]  # events are left out of event data
    return json.dumps(
        {
            "id": "evt_2b9f",
            "type": event_type,
            "created_at": "2026-11-23T10:00:05Z",
            "data": {**verification, **data},
        }
    ).encode()


def signed(
    body: bytes, *, secret: str = SECRET, at: datetime | None = None, msg_id: str = "msg_1"
) -> dict[str, str]:
    """The headers the service sends with `body`."""
    from standardwebhooks import Webhook  # noqa: PLC0415 - installed by the fixture above

    at = at or datetime.now(UTC)
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": Webhook(secret).sign(msg_id, at, body.decode()),
    }


def test_a_signed_event_is_returned_typed() -> None:
    body = event_body()
    event = verify_webhook(body, signed(body, msg_id="msg_42"), SECRET)
    assert isinstance(event, Event)
    assert (event.id, event.type, event.webhook_id) == (
        "evt_2b9f",
        "verification.approved",
        "msg_42",
    )
    assert event.type in EVENT_TYPES
    assert event.created_at == datetime(2026, 11, 23, 10, 0, 5, tzinfo=UTC)
    verification = event.verification()
    assert isinstance(verification, Verification)
    assert (verification.id, verification.status) == (VERIFICATION_ID, "approved")
    assert verification.delivery.events == ()


def test_header_names_are_matched_in_any_case() -> None:
    body = event_body("delivery.updated", provider_status="DELIVRD")
    headers = {name.title(): value for name, value in signed(body).items()}
    event = verify_webhook(body, headers, SECRET)
    assert event.data["provider_status"] == "DELIVRD"


def test_a_signature_is_checked_over_several_given_ones() -> None:
    # Standard Webhooks sends several signatures while a secret is being rotated.
    body = event_body()
    headers = signed(body)
    old = signed(body, secret=OTHER_SECRET)["webhook-signature"]
    headers["webhook-signature"] = f"{old} {headers['webhook-signature']}"
    assert verify_webhook(body, headers, SECRET).id == "evt_2b9f"


def test_a_changed_body_is_refused() -> None:
    body = event_body()
    headers = signed(body)
    tampered = body.replace(b"approved", b"canceled")
    with pytest.raises(WebhookSignatureError):
        verify_webhook(tampered, headers, SECRET)


def test_another_secret_s_signature_is_refused() -> None:
    body = event_body()
    with pytest.raises(WebhookSignatureError):
        verify_webhook(body, signed(body, secret=OTHER_SECRET), SECRET)


@pytest.mark.parametrize("minutes", [-10, 10])
def test_a_timestamp_more_than_five_minutes_away_is_refused_even_when_signed(minutes) -> None:
    body = event_body()
    headers = signed(body, at=datetime.now(UTC) + timedelta(minutes=minutes))
    with pytest.raises(WebhookTimestampError, match="timestamp too"):
        verify_webhook(body, headers, SECRET)


@pytest.mark.parametrize("missing", ["webhook-id", "webhook-timestamp", "webhook-signature"])
def test_a_missing_header_is_refused(missing) -> None:
    body = event_body()
    headers = signed(body)
    del headers[missing]
    with pytest.raises(WebhookSignatureError):
        verify_webhook(body, headers, SECRET)


@pytest.mark.parametrize("signature", ["garbage", "v1,not base64!", "v1,a,b", "v2,AAAA"])
def test_a_malformed_signature_is_refused(signature) -> None:
    body = event_body()
    headers = signed(body)
    headers["webhook-signature"] = signature
    with pytest.raises(WebhookSignatureError):
        verify_webhook(body, headers, SECRET)


def test_a_body_that_is_not_utf8_is_refused_as_unsigned() -> None:
    body = event_body()
    headers = signed(body)
    with pytest.raises(WebhookSignatureError):
        verify_webhook(b"\xff" + body, headers, SECRET)


def test_a_signed_body_that_is_not_an_event_is_a_payload_error() -> None:
    body = b'{"hello": "world"}'
    with pytest.raises(WebhookPayloadError):
        verify_webhook(body, signed(body), SECRET)


def test_event_data_without_a_verification_says_so() -> None:
    body = json.dumps(
        {
            "id": "evt_1",
            "type": "fraud.blocked",
            "created_at": "2026-11-23T10:00:05Z",
            "data": {"rule": "x"},
        }
    ).encode()
    event = verify_webhook(body, signed(body), SECRET)
    with pytest.raises(WebhookPayloadError):
        event.verification()


def test_every_refusal_is_a_webhook_verification_error() -> None:
    for error in (WebhookSignatureError, WebhookTimestampError, WebhookPayloadError):
        assert issubclass(error, WebhookVerificationError)


@pytest.mark.parametrize("secret", ["", "whsec_", "whsec_%%%not-base64"])
def test_an_unusable_secret_is_a_value_error_that_does_not_show_it(secret) -> None:
    body = event_body()
    with pytest.raises(ValueError, match="whsec_") as caught:
        verify_webhook(body, signed(body), secret)
    assert "%%%" not in str(caught.value)
