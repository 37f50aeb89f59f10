"""Reading delivery-report webhook bodies (JSON or form) into raw reports.

Statuses stay the provider's words here; domain/delivery.py decides what they mean.
"""

from __future__ import annotations

import urllib.parse
from typing import TYPE_CHECKING, Any

import msgspec

from otpservice.providers.base import scalar_text

if TYPE_CHECKING:
    from collections.abc import Mapping


class InvalidReport(ValueError):
    """The body is not a delivery report (the webhook answers 400)."""


class RawReport(msgspec.Struct, frozen=True, kw_only=True):
    """One delivery event as the provider wrote it."""

    message_ref: str
    """MessageFlow: the externalId the service sent. Flowstates: its own message id."""
    raw_status: str | None = None
    error_code: str | None = None
    occurred_at: str | None = None
    """The provider's timestamp, unparsed."""


# MessageFlow has no message id of its own, so its reports carry our externalId first. Flowstates
# never sees an externalId: its own id keys come first, and `id` last of those, since a report may
# have an id of its own next to the message's.
_REF_KEYS = ("externalid", "external_id", "messageid", "message_id", "id", "msgid")
_REF_KEYS_BY_PROVIDER = {
    "flowstates": ("messageid", "message_id", "msgid", "id", "externalid", "external_id"),
}
_STATUS_KEYS = ("status", "stat", "state", "deliverystatus", "dlrstatus", "statuscode")
_ERROR_KEYS = ("errorcode", "error_code", "err", "code")
_TIME_KEYS = ("timestamp", "deliveredat", "donedate", "done_date", "updatedat", "time")

_FORM = "application/x-www-form-urlencoded"


def parse_reports(
    body: bytes, *, provider: str, content_type: str | None = None
) -> list[RawReport]:
    """Every report in a webhook body: one object, a list, or either wrapped in `data`.

    JSON unless `content_type` says form; without a usable content type the body is sniffed.
    Raises InvalidReport when the body, or any item in it, is not a report.
    """
    ref_keys = _REF_KEYS_BY_PROVIDER.get(provider, _REF_KEYS)
    return [_report(item, ref_keys) for item in _items(body, content_type)]


def _items(body: bytes, content_type: str | None) -> list[Any]:
    media_type = (content_type or "").partition(";")[0].strip().lower()
    if media_type == _FORM:
        return [_decode_form(body)]
    if media_type == "application/json" or media_type.endswith("+json"):
        return _unwrap(_decode_json(body))
    # No or a vague content type (text/plain is common): JSON starts with { or [, a form never.
    if body.lstrip()[:1] in (b"{", b"["):
        return _unwrap(_decode_json(body))
    return [_decode_form(body)]


def _decode_json(body: bytes) -> Any:
    try:
        return msgspec.json.decode(body)
    except (msgspec.DecodeError, RecursionError) as exc:
        raise InvalidReport("the body is not JSON") from exc


def _decode_form(body: bytes) -> dict[str, str]:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidReport("the form body is not UTF-8") from exc
    fields: dict[str, str] = {}
    for key, value in urllib.parse.parse_qsl(text, keep_blank_values=True):
        # A repeated field keeps its first value, as the JSON keys keep their first spelling.
        fields.setdefault(key, value)
    return fields


def _unwrap(decoded: Any) -> list[Any]:
    # One level of `data` only: anything deeper is not a shape any provider sends.
    if isinstance(decoded, dict) and isinstance(decoded.get("data"), list | dict):
        decoded = decoded["data"]
    items = decoded if isinstance(decoded, list) else [decoded]
    if not items:
        raise InvalidReport("the body holds no report")
    return items


def _report(item: Any, ref_keys: tuple[str, ...]) -> RawReport:
    if not isinstance(item, dict):
        raise InvalidReport("a report is not an object")
    fields = _fold_keys(item)
    message_ref = _first(fields, ref_keys)
    if message_ref is None:
        raise InvalidReport("a report names no message")
    return RawReport(
        message_ref=message_ref,
        raw_status=_first(fields, _STATUS_KEYS),
        error_code=_first(fields, _ERROR_KEYS),
        occurred_at=_first(fields, _TIME_KEYS),
    )


def _fold_keys(item: Mapping[Any, Any]) -> dict[str, Any]:
    """Keys in lower case: providers write `Status`, `status` and `STATUS` alike."""
    folded: dict[str, Any] = {}
    for key, value in item.items():
        if isinstance(key, str):
            folded.setdefault(key.lower(), value)
    return folded


def _first(fields: Mapping[str, Any], keys: tuple[str, ...]) -> str | None:
    for key in keys:
        if (value := _text(fields.get(key))) is not None:
            return value
    return None


def _text(value: Any) -> str | None:
    # Integral floats read as integers: a status code 2.0 means DLR code 2, not the word "2.0".
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, float):
        return str(value)
    return scalar_text(value)
