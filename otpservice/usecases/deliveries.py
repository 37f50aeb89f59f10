"""Recording deliveries: what the provider answered a send (from the lane) and the delivery
reports its webhooks post. Idempotent; the first terminal status wins (the store applies the
rule of domain/delivery.py)."""

from __future__ import annotations

import time

from otpservice import metrics
from otpservice.domain import delivery
from otpservice.ids import VerificationRef, message_ref, parse_message_ref
from otpservice.lane import Send, SendOutcome
from otpservice.providers.dlr import RawReport
from otpservice.usecases.ports import DeliveryEvent, DeliveryRepository


class RecordDeliveries:
    """The lane's OutcomeRecorder, and what the webhooks call."""

    def __init__(self, repository: DeliveryRepository, *, provider: str, retention_ms: int) -> None:
        self.repository = repository
        self.provider = provider
        self.retention_ms = retention_ms

    async def ingest_reports(self, provider: str, reports: list[RawReport]) -> tuple[int, int]:
        """Apply a webhook's delivery reports; (recorded, unmatched)."""
        recorded = unmatched = 0
        for report in reports:
            status = delivery.normalize_provider_status(report.raw_status)
            metrics.count_dlr(provider, status.value)
            target = await self._send_for(provider, report.message_ref)
            known = target is not None and await self._record(
                target[0],
                DeliveryEvent(
                    status=status.value,
                    at_ms=0,
                    send=target[1],
                    provider=provider,
                    provider_status=_short(report.raw_status),
                    error_code=_short(report.error_code),
                ),
            )
            if known:
                recorded += 1
            else:
                unmatched += 1
                metrics.count_unmatched_dlr(provider)
        return recorded, unmatched

    async def record_outcome(self, send: Send, outcome: SendOutcome) -> None:
        """What the provider answered a send, recorded with the lane entry's acknowledgement."""
        await self._record(
            send.ref,
            DeliveryEvent(
                status=outcome.status.value,
                at_ms=0,
                send=send.number,
                provider=self.provider,
                provider_status=outcome.provider_status,
                error_code=outcome.error_code,
            ),
            lane_entry=send.entry or None,
        )
        if outcome.provider_message_id:
            # Providers that match reports by their own id (Flowstates) need this index.
            remaining_ms = int(max(0.0, send.deadline - time.monotonic()) * 1000)
            await self.repository.remember_provider_message(
                self.provider,
                outcome.provider_message_id,
                message_ref(send.ref, send.number),
                remaining_ms + self.retention_ms,
            )

    async def _send_for(self, provider: str, reference: str) -> tuple[VerificationRef, int] | None:
        """(verification, send number) of a provider's message reference."""
        ours = parse_message_ref(reference)
        if ours is not None:
            # Our own externalId: MessageFlow and the sandbox echo it back.
            return ours
        # The provider's own id (Flowstates): remembered when the provider accepted the SMS.
        remembered = await self.repository.lookup_provider_message(provider, reference)
        return parse_message_ref(remembered) if remembered is not None else None

    async def _record(
        self, ref: VerificationRef, event: DeliveryEvent, *, lane_entry: str | None = None
    ) -> bool:
        """Record one delivery event; False when the message is unknown."""
        status = delivery.DeliveryStatus(event.status)
        update = await self.repository.record_delivery(
            ref,
            event,
            lifts_cooldown=status in delivery.RESEND_UNLOCKING,
            retention_ms=self.retention_ms,
            lane_entry=lane_entry,
        )
        if update.verdict == "unmatched":
            return False
        if (
            update.verdict == "recorded"
            and update.current != update.previous
            and delivery.is_terminal(delivery.DeliveryStatus(update.current))
            and update.submitted_ms is not None
        ):
            metrics.observe_delivery(
                event.provider or self.provider,
                update.current,
                update.region,
                (update.now_ms - update.submitted_ms) / 1000,
            )
        return True


def _short(value: str | None, limit: int = 64) -> str | None:
    """Provider-supplied text, bounded: it is stored and shown back in delivery events."""
    return value[:limit] if value else None
