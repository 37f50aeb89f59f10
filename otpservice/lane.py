"""The priority lane: durable sends, submitted at once and never lost to a dying process.

The script that stores a code also adds its send to the shard's Redis stream, claimed by the
process that made the request; that process submits it straight away from memory (no Redis read
on the way) and acknowledges the entry in the same step that records what the provider answered.
Meanwhile it renews its claims every third of the visibility timeout. If it dies, its sends stop
being renewed, and the sweep that every process runs claims them after the timeout and submits
them again, or drops them when their code has expired (delivery `failed`) or they are no longer
wanted. A send can therefore reach a phone twice (the process died after the provider accepted
it but before it recorded that), never zero times while its code is valid; each second attempt
is counted in otp_lane_redeliveries_total.

The lane depends on three narrow things, all handed in: the provider's gateway, its own store
(`LaneRepository`: the streams), an `OutcomeRecorder` (what the provider answered goes there,
and the lane entry is acknowledged in that same step) and a `Rebuilder` (turns a send claimed
from another process back into a job). Provider calls in flight are bounded by the number of
dispatchers (OTP_LANE_CONCURRENCY).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import secrets
import socket
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Protocol

import msgspec

from otpservice import metrics
from otpservice.domain.delivery import DeliveryStatus
from otpservice.errors import OtpError, ProviderRejected, ProviderUnavailable, ServiceUnavailable
from otpservice.ids import VerificationRef
from otpservice.providers.base import SmsGateway, SmsMessage
from otpservice.providers.retry import submit_until_deadline
from otpservice.settings import LaneSettings

log = logging.getLogger(__name__)

_SWEEP_BATCH = 32
_FORGET_CONSUMERS_EVERY = 300.0
_FORGET_CONSUMERS_IDLE_MS = 24 * 3600 * 1000
_RECORD_RETRY_CAP = 2.0


class Send(msgspec.Struct, frozen=True, kw_only=True):
    """One SMS of one verification as the lane tracks it (its text travels apart, in SendJob)."""

    ref: VerificationRef
    number: int
    """1 for a verification's first SMS, 2 for its first resend, ..."""
    region: str
    deadline: float
    """time.monotonic() at which the code expires."""
    shard: int = 0
    entry: str = ""
    """The send's lane entry ('' for a send that is not in the lane, as in unit tests)."""
    redelivered: bool = False
    """Claimed from another process: it may have reached the provider once already."""


class SendJob(msgspec.Struct, frozen=True, kw_only=True):
    send: Send
    message: SmsMessage
    queued_at: float = msgspec.field(default_factory=time.monotonic)


class SendOutcome(msgspec.Struct, frozen=True, kw_only=True):
    """What became of a send: submitted, rejected or failed (never accepted while valid)."""

    status: DeliveryStatus
    provider_status: str | None = None
    error_code: str | None = None
    provider_message_id: str | None = None
    """The provider's own id of the accepted SMS, for providers that report by it."""


class ClaimedSend(msgspec.Struct, frozen=True, kw_only=True):
    """A send claimed from another process, with what is needed to send it again."""

    shard: int
    entry: str
    ref: VerificationRef
    send: int
    expires_ms: int
    sealed: bytes
    to: str
    region: str
    locale: str
    app_hash: str
    tenant: str
    now_ms: int


class ShardSweep(msgspec.Struct, frozen=True, kw_only=True):
    depth: int
    oldest_ms: int | None
    """Time the oldest entry still in the stream was added (server clock)."""
    now_ms: int
    expired: int = 0
    stale: int = 0
    claimed: list[ClaimedSend] = msgspec.field(default_factory=list)


class OutcomeRecorder(Protocol):
    async def record_outcome(self, send: Send, outcome: SendOutcome) -> None:
        """Record the outcome and acknowledge the send's lane entry, in one step."""
        ...


class Rebuilder(Protocol):
    def rebuild(self, claimed: ClaimedSend) -> SendJob | None:
        """The job to submit again, or None when the send cannot be rebuilt."""
        ...


class LaneRepository(Protocol):
    consumer: str

    async def sweep(
        self, *, visibility_ms: int, batch: int, provider: str, forget_idle_ms: int
    ) -> list[ShardSweep]:
        """Claim abandoned sends on every shard; drop the stale and the expired ones."""
        ...

    async def keep(self, entries: Mapping[int, Sequence[str]]) -> None: ...

    async def hand_back(self, entries: Mapping[int, Sequence[str]], idle_ms: int) -> None: ...


def consumer_name() -> str:
    """This process' name in the lane's consumer group: unique across restarts and hosts."""
    return f"{socket.gethostname()[:40]}-{os.getpid()}-{secrets.token_hex(3)}"


class SendLane:
    def __init__(
        self,
        gateway: SmsGateway,
        store: LaneRepository,
        recorder: OutcomeRecorder,
        rebuilder: Rebuilder,
        settings: LaneSettings | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.gateway = gateway
        self.store = store
        self.settings = settings or LaneSettings()
        self._recorder = recorder
        self._rebuilder = rebuilder
        self._queue: asyncio.Queue[SendJob] = asyncio.Queue()
        self._clock = clock
        self._sleep = sleep
        self._rng = random.Random()  # noqa: S311 - backoff jitter, not a secret
        self._workers: list[asyncio.Task[None]] = []
        self._timers: list[asyncio.Task[None]] = []
        self._owned: dict[tuple[int, str], Send] = {}
        """Every lane entry this process holds, queued or being sent."""
        self._busy = 0
        self._last_forget = 0.0
        # Set before tasks are cancelled (no more claims; then no more work): redis-py may turn
        # a cancellation into a connection error, which the loops would otherwise survive.
        self._closing = False
        self._halted = False

    def enqueue(self, job: SendJob) -> None:
        if job.send.entry:
            self._owned[job.send.shard, job.send.entry] = job.send
        self._queue.put_nowait(job)

    @property
    def idle(self) -> bool:
        """Nothing queued and nothing being dispatched by this process."""
        return self._queue.empty() and self._busy == 0

    def start(self) -> None:
        self._workers = [
            asyncio.create_task(self._work(), name=f"lane-{i}")
            for i in range(self.settings.concurrency)
        ]
        self._timers = [
            asyncio.create_task(self._sweep_forever(), name="lane-sweep"),
            asyncio.create_task(self._keep_forever(), name="lane-keep"),
        ]

    async def stop(self, grace: float) -> None:
        """Shut down in four steps, within about `grace` seconds and one Redis call:

        1. stop sweeping: this process claims nothing more;
        2. let the dispatchers send what is queued, for up to `grace` seconds;
        3. cancel the dispatchers and the claim renewal; a send cancelled mid-call stays owned;
        4. hand every send still owned back to Redis (idle time past the visibility timeout),
           so any other process's next sweep takes it at once.
        """
        self._closing = True
        await _cancel(self._timers[:1])
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(grace):
                await self._queue.join()
        self._halted = True
        await _cancel(self._workers + self._timers)
        self._workers, self._timers = [], []
        await self._hand_back()

    # --- dispatch ---------------------------------------------------------------------------

    async def _work(self) -> None:
        while not self._halted:
            job = await self._queue.get()
            self._busy += 1
            try:
                await self._record(job.send, await self._submit(job))
            except Exception:
                log.exception("dispatching send %s of a verification failed", job.send.number)
            finally:
                self._busy -= 1
                self._queue.task_done()

    async def _submit(self, job: SendJob) -> SendOutcome:
        """One send to the provider, retried while its code is valid: the outcome."""
        provider = self.gateway.name
        if self._clock() >= job.send.deadline:
            metrics.count_send(provider, "expired")
            return SendOutcome(status=DeliveryStatus.FAILED, provider_status="expired_before_send")
        if job.send.redelivered:
            metrics.count_redelivery(provider)
        try:
            receipt = await submit_until_deadline(
                self.gateway,
                job.message,
                deadline=job.send.deadline,
                clock=self._clock,
                sleep=self._sleep,
                rng=self._rng,
                observe=metrics.observe_provider_call,
            )
        except ProviderRejected as exc:
            metrics.count_send(provider, "rejected")
            return SendOutcome(
                status=DeliveryStatus.REJECTED,
                provider_status=exc.message or exc.reason,
                error_code=exc.code,
            )
        except ProviderUnavailable as exc:
            metrics.count_send(provider, "expired" if exc.reason == "expired" else "failed")
            return SendOutcome(
                status=DeliveryStatus.FAILED, provider_status=exc.reason, error_code=exc.code
            )
        metrics.count_send(provider, "accepted")
        return SendOutcome(
            status=DeliveryStatus.SUBMITTED,
            provider_status=receipt.provider_status,
            provider_message_id=receipt.provider_message_id,
        )

    async def _record(self, send: Send, outcome: SendOutcome) -> None:
        """Record the outcome, which also acknowledges the lane entry. While Redis is away this
        is retried (the claim is renewed meanwhile) until the code would have expired; after
        that the entry is left for a sweep, which drops it as expired."""
        delay = 0.1
        try:
            while True:
                try:
                    await self._recorder.record_outcome(send, outcome)
                except ServiceUnavailable:
                    # Stopping: redis-py may have turned the cancellation into this very error.
                    # The entry stays owned and is handed back.
                    if self._halted:
                        return
                    if self._clock() + delay >= send.deadline:
                        raise
                    await self._sleep(delay)
                    delay = min(delay * 2, _RECORD_RETRY_CAP)
                    continue
                break
        except OtpError as exc:
            log.warning("could not record delivery status %s: %s", outcome.status, exc.detail)
        # Not in a `finally`: a send cancelled at shutdown stays owned, so it is handed back.
        self._owned.pop((send.shard, send.entry), None)

    # --- the durable side -------------------------------------------------------------------

    async def _sweep_forever(self) -> None:
        while not self._closing:
            try:
                await self.sweep()
            except OtpError as exc:
                log.debug("lane sweep skipped: %s", exc.detail)
            except Exception:
                log.exception("lane sweep failed")
            await self._sleep(self.settings.sweep_seconds)

    async def sweep(self) -> None:
        """Claim abandoned sends and queue them again; refresh the lane gauges."""
        forget = 0
        if self._clock() - self._last_forget >= _FORGET_CONSUMERS_EVERY:
            self._last_forget = self._clock()
            forget = _FORGET_CONSUMERS_IDLE_MS
        shards = await self.store.sweep(
            visibility_ms=int(self.settings.visibility_seconds * 1000),
            batch=_SWEEP_BATCH,
            provider=self.gateway.name,
            forget_idle_ms=forget,
        )
        self._report(shards)
        for shard in shards:
            for claimed in shard.claimed:
                if (claimed.shard, claimed.entry) in self._owned:
                    continue  # ours already: a renewal came late, the send is under way
                job = self._rebuilder.rebuild(claimed)
                if job is not None:
                    self.enqueue(job)
                    continue
                # The code cannot be sent again: its delivery fails, and the entry goes.
                metrics.count_send(self.gateway.name, "failed")
                lost = Send(
                    ref=claimed.ref,
                    number=claimed.send,
                    region=claimed.region,
                    deadline=self._clock() + (claimed.expires_ms - claimed.now_ms) / 1000,
                    shard=claimed.shard,
                    entry=claimed.entry,
                )
                await self._record(
                    lost,
                    SendOutcome(
                        status=DeliveryStatus.FAILED, provider_status="unrecoverable_lane_entry"
                    ),
                )

    def _report(self, shards: list[ShardSweep]) -> None:
        provider = self.gateway.name
        depth = sum(s.depth for s in shards)
        ages = [(s.now_ms - s.oldest_ms) / 1000 for s in shards if s.oldest_ms is not None]
        metrics.set_lane(depth, max(ages, default=0.0))
        for shard in shards:
            if shard.expired:
                metrics.count_lane_dropped("expired", shard.expired)
                metrics.count_send(provider, "expired", shard.expired)
            if shard.stale:
                metrics.count_lane_dropped("stale", shard.stale)

    async def _keep_forever(self) -> None:
        while not self._halted:
            await self._sleep(self.settings.visibility_seconds / 3)
            try:
                await self.store.keep(self._by_shard())
            except OtpError as exc:
                log.debug("lane claims not renewed: %s", exc.detail)
            except Exception:
                log.exception("renewing lane claims failed")

    async def _hand_back(self) -> None:
        if not self._owned:
            return
        count = len(self._owned)
        try:
            await self.store.hand_back(
                self._by_shard(), idle_ms=int(self.settings.visibility_seconds * 10_000)
            )
        except Exception as exc:  # noqa: BLE001 - shutdown goes on whatever happened here
            # Not handed back: still claimed by this process' name, so another process takes
            # them when the visibility timeout passes instead of at its next sweep.
            log.warning("could not hand back %d lane sends: %s", count, type(exc).__name__)
            return
        log.info("handed %d unfinished lane sends back to the other processes", count)
        self._owned.clear()

    def _by_shard(self) -> dict[int, list[str]]:
        grouped: dict[int, list[str]] = {}
        for shard, entry in list(self._owned):
            grouped.setdefault(shard, []).append(entry)
        return grouped


async def _cancel(tasks: list[asyncio.Task[None]]) -> None:
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
