"""The priority lane: sends queued by the request path and submitted at once by dispatchers.

Each send goes to the configured provider's priority channel, retried with backoff while its code
is valid and never after. The request that stored the code does not wait for any of this.
This lane lives in the process; a code whose process dies before submission is not sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable
from typing import Protocol

import msgspec

from otpservice import metrics
from otpservice.domain.delivery import DeliveryStatus
from otpservice.errors import OtpError, ProviderRejected, ProviderUnavailable
from otpservice.providers.base import SmsGateway, SmsMessage, SubmitReceipt
from otpservice.providers.retry import submit_until_deadline

log = logging.getLogger(__name__)


class SendJob(msgspec.Struct, frozen=True, kw_only=True):
    verification_id: str
    send: int
    region: str
    message: SmsMessage
    deadline: float
    """time.monotonic() at which the code expires."""
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


class SendLane:
    def __init__(
        self,
        gateway: SmsGateway,
        *,
        concurrency: int = 32,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.gateway = gateway
        self._queue: asyncio.Queue[SendJob] = asyncio.Queue()
        self._concurrency = concurrency
        self._clock = clock
        self._sleep = sleep
        self._rng = random.Random()  # noqa: S311 - backoff jitter, not a secret
        self._workers: list[asyncio.Task[None]] = []
        self._recorder: DeliveryRecorder | None = None
        self._pending: dict[int, float] = {}

    def enqueue(self, job: SendJob) -> None:
        self._queue.put_nowait(job)
        self._report_depth()

    def start(self, recorder: DeliveryRecorder) -> None:
        self._recorder = recorder
        self._workers = [
            asyncio.create_task(self._work(), name=f"lane-{i}") for i in range(self._concurrency)
        ]

    async def stop(self, grace: float) -> None:
        """Let queued sends go out for up to `grace` seconds, then stop the dispatchers."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(grace):
                await self._queue.join()
        for worker in self._workers:
            worker.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)
        self._workers = []

    @property
    def idle(self) -> bool:
        """Nothing queued and nothing being dispatched."""
        return self._queue.empty() and not self._pending

    def _report_depth(self) -> None:
        oldest = min(self._pending.values(), default=None)
        age = self._clock() - oldest if oldest is not None else 0.0
        metrics.set_lane(self._queue.qsize() + len(self._pending), age)

    async def _work(self) -> None:
        while True:
            job = await self._queue.get()
            token = id(job)
            self._pending[token] = job.queued_at
            try:
                await self._dispatch(job)
            except Exception:
                log.exception("dispatching send %s of a verification failed", job.send)
            finally:
                self._pending.pop(token, None)
                self._queue.task_done()
                self._report_depth()

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
        if self._recorder is None:
            return
        try:
            await self._recorder(job, status, provider_status, error_code, receipt)
        except OtpError as exc:
            log.warning("could not record delivery status %s: %s", status.value, exc.detail)
