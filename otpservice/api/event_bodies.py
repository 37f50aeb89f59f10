"""The JSON body of each tenant event webhook (events.py sends it): {"id", "type",
"created_at", "data"}, where `data` is the Verification object as GET /otp/{id} shows it (without
its events) as it was when the event happened, plus what the type needs: `delivery_event`
(delivery.updated) or `block` (fraud.blocked, which has no verification)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec

from otpservice.api.fraud import block_out
from otpservice.api.schemas import delivery_event_out, iso, verification_out
from otpservice.events import OutboxEvent
from otpservice.ids import Identifiers
from otpservice.usecases.ports import FraudBlock
from otpservice.views import verification_view

_encoder = msgspec.json.Encoder()


def event_renderer(ids: Identifiers) -> Callable[[OutboxEvent], bytes]:
    def render(event: OutboxEvent) -> bytes:
        return _encoder.encode(
            {
                "id": event.public_id,
                "type": event.type,
                "created_at": iso(event.at_ms),
                "data": event_data(ids, event),
            }
        )

    return render


def event_data(ids: Identifiers, event: OutboxEvent) -> dict[str, Any]:
    data: dict[str, Any] = {}
    if event.record is not None and event.ref is not None:
        public_id = ids.public_id(event.ref, event.tenant)
        view = verification_view(public_id, event.record, (), event.at_ms)
        data = msgspec.to_builtins(verification_out(view))
        data["delivery"].pop("events", None)
    if event.delivery is not None:
        data["delivery_event"] = msgspec.to_builtins(delivery_event_out(event.delivery))
    if event.block is not None:
        stored = event.block
        block = FraudBlock(
            key=str(stored.get("key", "")),
            rule=str(stored.get("rule", "")),
            figure=int(stored.get("figure", 0)),
            limit=int(stored.get("limit", 0)),
            window=str(stored.get("window", "day")),
            until_ms=int(stored.get("until", 0)),
            at_ms=int(stored.get("at", event.at_ms)),
            level=int(stored.get("level", 0)),
            country=str(stored.get("country", "")),
        )
        data["block"] = msgspec.to_builtins(block_out(block))
    return data
