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

Provider calls in flight are bounded by the number of dispatchers (OTP_LANE_CONCURRENCY).
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
from collections.abc import Awaitable, Callable
from typing import Protocol

import msgspec

from otpservice import metrics
from otpservice.domain.delivery import DeliveryStatus
from otpservice.errors import OtpError, ProviderRejected, ProviderUnavailable, ServiceUnavailable
from otpservice.providers.base import SmsGateway, SmsMessage, SubmitReceipt
from otpservice.providers.retry import submit_until_deadline
from otpservice.settings import LaneSettings
from otpservice.store.lane_store import ClaimedSend, LaneStore, ShardSweep

log = logging.getLogger(__name__)

_SWEEP_BATCH = 32
_FORGET_CONSUMERS_EVERY = 300.0
_FORGET_CONSUMERS_IDLE_MS = 24 * 3600 * 1000
_RECORD_RETRY_CAP = 2.0


class SendJob(msgspec.Struct, frozen=True, kw_only=True):
    verification_id: str
    send: int
    region: str
    message: SmsMessage
    deadline: float
    """time.monotonic() at which the code expires."""
    shard: int = 0
    entry: str = ""
    """The send's lane entry ('' for a send that is not in the lane, as in unit tests)."""
    redelivered: bool = False
    """Claimed from another process: it may have reached the provider once already."""
    queued_at: float = msgspec.field(default_factory=time.monotonic)


class DeliveryRecorder(Protocol):
    async def __call__(
        self,
        job: SendJob,
        status: DeliveryStatus,
        provider_status: str | None,
        error_code: str | None,
        receipt: SubmitReceipt | None,
    ) -> None: ...


Reclaimer = Callable[[ClaimedSend], Awaitable[SendJob | None]]
"""Turns a claimed send back into a job, or settles it (and returns None) when it cannot be."""


def consumer_name() -> str:
    """This process' name in the lane's consumer group: unique across restarts and hosts."""
    return f"{socket.gethostname()[:40]}-{os.getpid()}-{secrets.token_hex(3)}"


class SendLane:
    def __init__(
        self,
        gateway: SmsGateway,
        store: LaneStore | None = None,
        settings: LaneSettings | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.gateway = gateway
        self.store = store
        self.settings = settings or LaneSettings()
        self._queue: asyncio.Queue[SendJob] = asyncio.Queue()
        self._clock = clock
        self._sleep = sleep
        self._rng = random.Random()  # noqa: S311 - backoff jitter, not a secret
        self._workers: list[asyncio.Task[None]] = []
        self._background: list[asyncio.Task[None]] = []
        self._recorder: DeliveryRecorder | None = None
        self._reclaimer: Reclaimer | None = None
        self._owned: dict[tuple[int, str], SendJob] = {}
        """Every lane entry this process holds, queued or being sent."""
        self._busy = 0
        self._expired_event = b""
        self._retention_ms = 0
        self._last_forget = 0.0
        # Set before tasks are cancelled (no more claims; then no more work): redis-py may turn
        # a cancellation into a connection error, which the loops would otherwise survive.
        self._closing = False
        self._halted = False

    @property
    def consumer(self) -> str:
        return self.store.consumer if self.store is not None else ""

    def enqueue(self, job: SendJob) -> None:
        if job.entry:
            self._owned[job.shard, job.entry] = job
        self._queue.put_nowait(job)

    def start(
        self,
        recorder: DeliveryRecorder,
        reclaimer: Reclaimer | None = None,
        *,
        expired_event: bytes = b"",
        retention_ms: int = 0,
    ) -> None:
        """`expired_event`, `retention_ms`: how the sweep records a send whose code expired."""
        self._recorder = recorder
        self._reclaimer = reclaimer
        self._expired_event = expired_event
        self._retention_ms = retention_ms
        self._workers = [
            asyncio.create_task(self._work(), name=f"lane-{i}")
            for i in range(self.settings.concurrency)
        ]
        if self.store is not None:
            self._background = [
                asyncio.create_task(self._sweep_forever(), name="lane-sweep"),
                asyncio.create_task(self._keep_forever(), name="lane-keep"),
            ]

    async def stop(self, grace: float) -> None:
        """Stop claiming, let queued sends go out for up to `grace` seconds, then hand every
        unfinished one back to Redis for the other processes and stop."""
        self._closing = True
        await _cancel(self._background[:1])
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(grace):
                await self._queue.join()
        self._halted = True
        await _cancel(self._workers)
        await _cancel(self._background)
        self._workers = []
        self._background = []
        await self._hand_back()

    @property
    def idle(self) -> bool:
        """Nothing queued and nothing being dispatched by this process."""
        return self._queue.empty() and self._busy == 0

    # --- dispatch ---------------------------------------------------------------------------

    async def _work(self) -> None:
        while not self._halted:
            job = await self._queue.get()
            self._busy += 1
            try:
                await self._dispatch(job)
            except Exception:
                log.exception("dispatching send %s of a verification failed", job.send)
            finally:
                self._busy -= 1
                self._queue.task_done()

    async def _dispatch(self, job: SendJob) -> None:
        provider = self.gateway.name
        receipt: SubmitReceipt | None = None
        error_code: str | None = None
        provider_status: str | None = None
        if self._clock() >= job.deadline:
            metrics.count_send(provider, "expired")
            status = DeliveryStatus.FAILED
            provider_status = "expired_before_send"
        else:
            if job.redelivered:
                metrics.count_redelivery(provider)
            try:
                receipt = await submit_until_deadline(
                    self.gateway,
                    job.message,
                    deadline=job.deadline,
                    clock=self._clock,
                    sleep=self._sleep,
                    rng=self._rng,
                    observe=metrics.observe_provider_call,
                )
            except ProviderRejected as exc:
                metrics.count_send(provider, "rejected")
                status = DeliveryStatus.REJECTED
                provider_status, error_code = exc.message or exc.reason, exc.code
            except ProviderUnavailable as exc:
                expired = exc.reason == "expired"
                metrics.count_send(provider, "expired" if expired else "failed")
                status = DeliveryStatus.FAILED
                provider_status, error_code = exc.reason, exc.code
            else:
                metrics.count_send(provider, "accepted")
                status = DeliveryStatus.SUBMITTED
                provider_status = receipt.provider_status
        await self._record(job, status, provider_status, error_code, receipt)

    async def _record(
        self,
        job: SendJob,
        status: DeliveryStatus,
        provider_status: str | None,
        error_code: str | None,
        receipt: SubmitReceipt | None,
    ) -> None:
        """Record the outcome, which also acknowledges the lane entry. While Redis is away this
        is retried (the claim is renewed meanwhile) until the code would have expired; after
        that the entry is left for a sweep, which drops it as expired."""
        delay = 0.1
        try:
            while self._recorder is not None:
                try:
                    await self._recorder(job, status, provider_status, error_code, receipt)
                except ServiceUnavailable:
                    # Stopping: redis-py may have turned the cancellation into this very error.
                    # The entry stays owned and is handed back.
                    if self._halted:
                        return
                    if self._clock() + delay >= job.deadline:
                        raise
                    await self._sleep(delay)
                    delay = min(delay * 2, _RECORD_RETRY_CAP)
                    continue
                break
        except OtpError as exc:
            log.warning("could not record delivery status %s: %s", status.value, exc.detail)
        # Not in a `finally`: a send cancelled at shutdown stays owned, so it is handed back.
        self._owned.pop((job.shard, job.entry), None)

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
        assert self.store is not None
        forget = 0
        if self._clock() - self._last_forget >= _FORGET_CONSUMERS_EVERY:
            self._last_forget = self._clock()
            forget = _FORGET_CONSUMERS_IDLE_MS
        shards = await self.store.sweep(
            visibility_ms=int(self.settings.visibility_seconds * 1000),
            batch=_SWEEP_BATCH,
            expired_event=self._expired_event,
            retention_ms=self._retention_ms,
            forget_idle_ms=forget,
        )
        self._report(shards)
        for shard in shards:
            for claimed in shard.claimed:
                if (claimed.shard, claimed.entry) in self._owned:
                    continue  # ours already: a renewal came late, the send is under way
                job = await self._reclaimer(claimed) if self._reclaimer is not None else None
                if job is not None:
                    self.enqueue(job)

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
                await self.renew()
            except OtpError as exc:
                log.debug("lane claims not renewed: %s", exc.detail)
            except Exception:
                log.exception("renewing lane claims failed")

    async def renew(self) -> None:
        assert self.store is not None
        await self.store.keep(self._by_shard())

    async def _hand_back(self) -> None:
        if self.store is None or not self._owned:
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
