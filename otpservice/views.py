"""What the use cases return: plain structs the API turns into its wire types."""

from __future__ import annotations

import msgspec


class DeliveryEvent(msgspec.Struct, frozen=True, kw_only=True):
    status: str
    at_ms: int
    send: int
    provider: str | None = None
    provider_status: str | None = None
    error_code: str | None = None


class VerificationView(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    to: str
    status: str
    created_ms: int
    expires_ms: int
    attempts_left: int
    sends: int
    sends_left: int
    resend_available_ms: int | None
    delivery_status: str
    delivery_updated_ms: int
    client_ref: str | None
    events: tuple[DeliveryEvent, ...] = ()


class CheckView(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    status: str
    valid: bool
    attempts_left: int


class _StoredEvent(msgspec.Struct, frozen=True):
    at: int
    status: str
    send: int = 0
    provider: str | None = None
    provider_status: str | None = None
    error_code: str | None = None


_event_decoder = msgspec.json.Decoder(_StoredEvent)


def event_fragment(
    status: str,
    provider: str | None,
    provider_status: str | None = None,
    error_code: str | None = None,
) -> bytes:
    """An event as the Lua scripts store it: a JSON object minus its '{' (they prepend time).
    Empty fields are left out: every pending verification keeps its events in Redis."""
    fields = {
        "status": status,
        "provider": provider,
        "provider_status": provider_status,
        "error_code": error_code,
    }
    return msgspec.json.encode({k: v for k, v in fields.items() if v is not None})[1:]


def view_from_record(
    verification_id: str, fields: dict[str, bytes], now_ms: int, events: list[bytes]
) -> VerificationView:
    def text(name: str) -> str:
        return fields.get(name, b"").decode()

    def number(name: str) -> int:
        return int(fields.get(name, b"0") or b"0")

    status = text("st")
    expires = number("ex")
    if status == "pending" and now_ms >= expires:
        status = "expired"
    sends = number("sn")
    sends_left = max(0, number("ms") - sends)
    resend_at = max(number("nr"), now_ms) if status == "pending" and sends_left > 0 else None
    decoded = []
    for raw in events:
        try:
            event = _event_decoder.decode(raw)
        except msgspec.DecodeError:
            continue
        decoded.append(
            DeliveryEvent(
                status=event.status,
                at_ms=event.at,
                send=event.send,
                provider=event.provider,
                provider_status=event.provider_status,
                error_code=event.error_code,
            )
        )
    return VerificationView(
        id=verification_id,
        to=text("to"),
        status=status,
        created_ms=number("ca"),
        expires_ms=expires,
        attempts_left=max(0, number("al")),
        sends=sends,
        sends_left=sends_left,
        resend_available_ms=resend_at,
        delivery_status=text("ds") or "queued",
        delivery_updated_ms=number("du"),
        client_ref=text("cr") or None,
        events=tuple(decoded),
    )
