"""The stored layout: every hash field name, the lane entry's fields, the delivery event codec,
and typed decoding of script replies. The one place that knows what Redis holds.

The Lua scripts get the same names from `lua_constants()`, prepended to each of them by
scripts.py, so a field is named once, here. Keys (keys.py) of one verification:

    current   hash    the number's latest verification: RECORD fields
    archived  hash    the same, renamed there when a newer verification of the number began
    events    string  delivery events, one JSON object per line, the last MAX_EVENTS kept
    ...               (keys.py says the rest)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec

from otpservice.domain.delivery import STATUS_RANK, TERMINAL, DeliveryStatus
from otpservice.usecases.ports import DeliveryEvent, VerificationRecord

RECORD: dict[str, str] = {
    # VerificationRecord field (and Lua name) -> hash field. Short names: every pending
    # verification stores them all.
    "rand": "r",
    "tenant": "tn",
    "to": "to",
    "region": "cc",
    "status": "st",
    "created_ms": "ca",
    "expires_ms": "ex",
    "attempts_left": "al",
    "max_attempts": "ma",
    "wrong_checks": "wc",
    "sends": "sn",
    "max_sends": "ms",
    "next_resend_ms": "nr",
    "delivery_status": "ds",
    "delivery_updated_ms": "du",
    "submitted_ms": "sa",
    "finished_ms": "fa",
    "client_ref": "cr",
    "locale": "lc",
    "app_hash": "ah",
    "provider": "pv",
    "fraud_prefix": "fp",
    "fraud_ip": "fi",
    # Never leave the store's reply decoding: the check's inputs.
    "salt": "sl",
    "digest": "h1",
    "previous_digest": "h0",
    "accept_previous": "ap",
    # The number's earlier verifications still kept (their rands, newest first, at most
    # EARLIER_KEPT): a support lookup by number reads them in the same script, no scan.
    "earlier": "hx",
}
EARLIER_KEPT = 10
_SECRET_FIELDS = frozenset(
    {"salt", "digest", "previous_digest", "accept_previous", "rand", "max_attempts", "wrong_checks",
     "fraud_prefix", "earlier"}
)  # fmt: skip
_BY_FIELD = {field: name for name, field in RECORD.items()}
_EVENT_FIELDS = [f for n, f in RECORD.items() if n not in _SECRET_FIELDS or n == "rand"]
"""What an event keeps of a verification (_prelude.lua record_snapshot): never a secret."""

LANE_ENTRY: dict[str, str] = {
    "ref": "v",  # the verification's reference (ids.py)
    "send": "n",
    "expires_ms": "x",
    "sealed": "c",  # the code, sealed (sealing.py)
}
LANE_GROUP = "lane"
"""The priority lane's consumer group on every shard's stream."""
MAX_EVENTS = 50
EVENTS_KEPT_MS = 25 * 3_600_000
"""An outbox outlives its newest event by this: past the 24 h of retries, then it goes."""


def lua_constants() -> str:
    """The names and rules the scripts share with Python, as Lua locals."""

    def table(mapping: dict[str, Any]) -> str:
        items = ", ".join(
            f"{k} = {v!r}" if isinstance(v, str) else f"{k} = {v}" for k, v in mapping.items()
        )
        return "{" + items + "}"

    ranks = {status.value: rank for status, rank in STATUS_RANK.items()}
    terminal_rank = STATUS_RANK[next(iter(TERMINAL))]
    return "\n".join(
        [
            "-- Generated from store/schema.py and domain/delivery.py: edit those, not this.",
            f"local F = {table(RECORD)}",
            f"local L = {table(LANE_ENTRY)}",
            f"local LANE_GROUP = {LANE_GROUP!r}",
            f"local MAX_EVENTS = {MAX_EVENTS}",
            f"local EARLIER_KEPT = {EARLIER_KEPT}",
            f"local EVENTS_KEPT_MS = {EVENTS_KEPT_MS}",
            "local EVENT_FIELDS = {"
            + ", ".join(
                repr(f) for n, f in RECORD.items() if n not in _SECRET_FIELDS or n == "rand"
            )
            + "}",
            f"local RANK = {table(ranks)}",
            f"local TERMINAL_RANK = {terminal_rank}",
            "",
        ]
    )


# --- delivery events ----------------------------------------------------------------------------


class _StoredEvent(msgspec.Struct, frozen=True):
    at: int
    status: str
    send: int = 0
    provider: str | None = None
    provider_status: str | None = None
    error_code: str | None = None
    detail: str | None = None


_event_decoder = msgspec.json.Decoder(_StoredEvent)


def event_fragment(event: DeliveryEvent) -> bytes:
    """An event as the scripts store it: a JSON object minus its '{' (they prepend the time and
    the send). Empty fields are left out: every pending verification keeps its events."""
    fields = {
        "status": event.status,
        "provider": event.provider,
        "provider_status": event.provider_status,
        "error_code": event.error_code,
        "detail": event.detail,
    }
    return msgspec.json.encode({k: v for k, v in fields.items() if v is not None})[1:]


def decode_events(blob: bytes) -> tuple[DeliveryEvent, ...]:
    out = []
    for line in blob.split(b"\n") if blob else ():
        try:
            stored = _event_decoder.decode(line)
        except msgspec.DecodeError:
            continue
        out.append(
            DeliveryEvent(
                status=stored.status,
                at_ms=stored.at,
                send=stored.send,
                provider=stored.provider,
                provider_status=stored.provider_status,
                error_code=stored.error_code,
                detail=stored.detail,
            )
        )
    return tuple(out)


# --- records ------------------------------------------------------------------------------------


def record_fields(flat: Sequence[Any]) -> dict[str, bytes]:
    """HGETALL's flat reply -> {hash field: value}."""
    return {_text(flat[i]): bytes(flat[i + 1]) for i in range(0, len(flat), 2)}


def decode_record(tag: str, flat: Sequence[Any]) -> VerificationRecord:
    """A verification from HGETALL of its hash."""
    fields = record_fields(flat)
    values: dict[str, Any] = {}
    for field, raw in fields.items():
        name = _BY_FIELD.get(field)
        if name is None or name in _SECRET_FIELDS:
            continue
        if raw:
            values[name] = raw.decode()
    values["ref"] = (tag, fields.get(RECORD["rand"], b"").decode())
    values.setdefault("delivery_status", DeliveryStatus.QUEUED.value)
    return msgspec.convert(values, VerificationRecord, strict=False)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
