"""Tenant event webhooks: every process polls the outboxes (store/events.py) the scripts fill in
the same atomic step as each change, POSTs each event to its tenant's `events_url` signed the
Standard Webhooks way, and settles it: gone once a 2xx came back, due again after a backoff
otherwise, dropped 24 h after it happened. At least once: a receiver de-duplicates by
`webhook-id`. A process that dies holding events loses nothing: their lease ends and another
process (or itself, restarted) takes them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

import httpx
import msgspec
from standardwebhooks.webhooks import Webhook

from otpservice import metrics
from otpservice.errors import OtpError
from otpservice.ids import VerificationRef
from otpservice.settings import EventSettings
from otpservice.usecases.ports import DeliveryEvent, VerificationRecord

log = logging.getLogger(__name__)

EVENT_TYPES = (
    "verification.approved",
    "verification.failed",
    "verification.expired",
    "verification.canceled",
    "delivery.updated",
    "fraud.blocked",
)


class OutboxEvent(msgspec.Struct, frozen=True, kw_only=True):
    """One event as it waits in an outbox: what happened, and the verification as it was."""

    outbox: int
    id: str
    """Its id within its outbox."""
    public_id: str
    """`webhook-id` and the body's `id`: the same on every attempt."""
    type: str
    tenant: str
    at_ms: int
    ref: VerificationRef | None = None
    record: VerificationRecord | None = None
    delivery: DeliveryEvent | None = None
    """delivery.updated: the delivery event that changed the status."""
    block: dict[str, Any] | None = None
    """fraud.blocked: the block as fraud_check.lua stored it."""


class OutboxPoll(msgspec.Struct, frozen=True, kw_only=True):
    events: list[OutboxEvent]
    depth: int
    """Events waiting in every outbox (claimed ones included)."""
    oldest_age_ms: int
    now_ms: int


class Settled(msgspec.Struct, frozen=True, kw_only=True):
    outbox: int
    id: str
    next_ms: int
    """0: delivered or given up; else when to try again."""


class EventOutbox(Protocol):
    async def poll(self, *, lease_ms: int) -> OutboxPoll: ...

    async def settle(self, settled: Sequence[Settled]) -> None: ...


class EventTarget(msgspec.Struct, frozen=True):
    url: str
    secret: str
    """`whsec_...`"""


Render = Callable[[OutboxEvent], bytes]
"""An event's JSON body: {"id", "type", "created_at", "data"} (api/event_bodies.py)."""


class EventDispatcher:
    """Polls every `settings.poll_seconds`; at most `settings.concurrency` POSTs in flight."""

    def __init__(
        self,
        outbox: EventOutbox,
        targets: Mapping[str, EventTarget],
        render: Render,
        settings: EventSettings,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self.outbox = outbox
        self.settings = settings
        self._render = render
        self._signers = {name: (t.url, Webhook(t.secret)) for name, t in targets.items()}
        timeout = settings.timeout_seconds
        self._client = client or httpx.AsyncClient(
            timeout=httpx.Timeout(timeout, connect=min(timeout, 2.0)),
            limits=httpx.Limits(max_connections=settings.concurrency),
            follow_redirects=False,
        )
        self._slots = asyncio.Semaphore(settings.concurrency)
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        self._complaints = _Complaints()

    def start(self) -> None:
        if self._task is None and self._signers:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="events")

    async def stop(self, deadline: float) -> None:
        """Let the poll in progress deliver and settle what it claimed (within `deadline`),
        then close. What it could not settle comes back to another process after its lease."""
        self._stopping.set()
        if self._task is not None:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(deadline):
                    await asyncio.shield(self._task)
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self._client.aclose()

    async def _run(self) -> None:
        while not self._stopping.is_set():
            started = time.monotonic()
            try:
                await self.poll_once()
            except OtpError as exc:
                log.warning("event webhooks: the outbox cannot be read: %s", exc.detail)
            except Exception:
                log.exception("event webhooks: poll failed")
            pause = max(0.0, self.settings.poll_seconds - (time.monotonic() - started))
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(pause):
                    await self._stopping.wait()

    async def poll_once(self) -> int:
        """One poll: claim what is due, deliver it, settle it. Returns the events delivered.
        Deliveries not done before the lease would end are stopped and made due at once: an
        event is never delivered by this process after another one may have taken it."""
        settings = self.settings
        poll = await self.outbox.poll(lease_ms=int(settings.lease_seconds * 1000))
        metrics.set_event_backlog(poll.depth, poll.oldest_age_ms / 1000)
        if not poll.events:
            return 0
        loop = asyncio.get_running_loop()
        tasks = [loop.create_task(self._deliver(e, poll.now_ms)) for e in poll.events]
        budget = max(0.5, settings.lease_seconds - settings.timeout_seconds - 1)
        done, late = await asyncio.wait(tasks, timeout=budget)
        for task in late:
            task.cancel()
        results = []
        for event, task in zip(poll.events, tasks, strict=True):
            if task in done and task.exception() is None:
                results.append(task.result())
            else:
                results.append(Settled(outbox=event.outbox, id=event.id, next_ms=poll.now_ms))
        await self.outbox.settle(results)
        return sum(1 for r in results if r.next_ms == 0)

    async def _deliver(self, event: OutboxEvent, now_ms: int) -> Settled:
        done = Settled(outbox=event.outbox, id=event.id, next_ms=0)
        target = self._signers.get(event.tenant)
        if target is None:
            metrics.count_event_dropped("unconfigured")
            return done
        age_ms = max(0, now_ms - event.at_ms)
        if age_ms > self.settings.give_up_seconds * 1000:
            metrics.count_event_dropped("gave_up")
            log.warning(
                "event webhooks: tenant %s: %s %s dropped after 24 h of failed attempts",
                event.tenant, event.type, event.public_id,
            )  # fmt: skip
            return done
        async with self._slots:
            failure = await self._post(target, event)
        if failure is None:
            metrics.count_event_delivered(event.type)
            return done
        metrics.count_event_failure(failure)
        self._complaints.note(event.tenant, failure)
        delay = min(
            self.settings.retry_max_seconds * 1000,
            max(self.settings.retry_min_seconds * 1000, age_ms),
        )
        return Settled(outbox=event.outbox, id=event.id, next_ms=now_ms + int(delay))

    async def _post(self, target: tuple[str, Webhook], event: OutboxEvent) -> str | None:
        """None when the receiver took it (2xx), else why not: http_4xx, http_5xx, timeout..."""
        url, signer = target
        try:
            body = self._render(event)
        except Exception:
            log.exception("event webhooks: %s %s cannot be rendered", event.type, event.public_id)
            return "render"
        sent_at = datetime.now(tz=UTC)
        headers = {
            "content-type": "application/json",
            "webhook-id": event.public_id,
            "webhook-timestamp": str(int(sent_at.timestamp())),
            "webhook-signature": signer.sign(event.public_id, sent_at, body.decode()),
            "user-agent": "otpservice-webhooks",
        }
        try:
            answer = await self._client.post(url, content=body, headers=headers)
        except httpx.TimeoutException:
            return "timeout"
        except httpx.HTTPError:
            return "connect"
        if 200 <= answer.status_code < 300:
            return None
        return f"http_{answer.status_code // 100}xx"


class _Complaints:
    """A failing receiver is logged at most once a minute per tenant, with the count since."""

    def __init__(self, every_seconds: float = 60.0) -> None:
        self._every = every_seconds
        self._last: dict[str, float] = {}
        self._count: dict[str, int] = {}

    def note(self, tenant: str, failure: str) -> None:
        self._count[tenant] = self._count.get(tenant, 0) + 1
        now = time.monotonic()
        if now - self._last.get(tenant, -self._every) < self._every:
            return
        self._last[tenant] = now
        count, self._count[tenant] = self._count[tenant], 0
        log.warning(
            "event webhooks: tenant %s: delivery failed (%s), %d failure(s) in the last minute;"
            " retrying with backoff",
            tenant, failure, count,
        )  # fmt: skip
