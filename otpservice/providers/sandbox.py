"""The sandbox gateway: a faithful stand-in for a provider, for development and tests only.

It accepts every SMS without sending it, keeps the last messages in memory (tests and the
development inbox, GET /dev/inbox, read codes there: each process keeps its own), prints each
SMS to stdout in development mode, and, like a real provider, posts a
delivery report back to the service's webhook after a delay, with a configurable outcome mix
(delivered / undelivered / expired / rejected / no report). It is never active in production.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import random
import secrets
import sys
import time
from typing import TextIO

import httpx
import msgspec

from otpservice.providers.base import SmsMessage, SubmitReceipt

log = logging.getLogger(__name__)

# What the simulator reports for each outcome: SMPP `stat` words, as many real providers send.
_STAT_WORDS = {
    "delivered": "DELIVRD",
    "undelivered": "UNDELIV",
    "expired": "EXPIRED",
    "rejected": "REJECTD",
}


class SandboxMessage(msgspec.Struct, frozen=True):
    to: str
    text: str
    sender: str
    external_id: str
    provider_message_id: str
    at_ms: int = 0
    """When the sandbox took it (wall clock, milliseconds since the epoch)."""


class ReportSimulator:
    """Posts one delivery report per accepted SMS to the service's /webhooks/sandbox."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        *,
        url: str,
        secret: str,
        delay: float,
        outcomes: tuple[tuple[str, int], ...],
        rng: random.Random | None = None,
    ) -> None:
        self._client = client
        self._url = url
        self._headers = {"Authorization": f"Bearer {secret}"}
        self._delay = delay
        self._names = [name for name, _ in outcomes]
        self._weights = [weight for _, weight in outcomes]
        self._rng = rng or random.Random()  # noqa: S311 - simulated outcomes, not secrets
        self._tasks: set[asyncio.Task[None]] = set()

    def schedule(self, external_id: str) -> None:
        outcome = self._rng.choices(self._names, self._weights)[0]
        if outcome == "none":
            return
        task = asyncio.create_task(self._post(external_id, outcome))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _post(self, external_id: str, outcome: str) -> None:
        await asyncio.sleep(self._delay)
        report = {"externalId": external_id, "status": _STAT_WORDS[outcome]}
        if outcome == "rejected":
            report["errorCode"] = "SANDBOX-REJECT"
        try:
            response = await self._client.post(self._url, json=report, headers=self._headers)
            if response.status_code >= 300:
                log.warning("sandbox report answered %s", response.status_code)
        except httpx.HTTPError as exc:
            log.warning("sandbox report not delivered: %s", type(exc).__name__)

    async def aclose(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._client.aclose()


class SandboxGateway:
    name = "sandbox"
    min_validity_seconds = 1

    def __init__(
        self,
        *,
        echo: bool,
        stream: TextIO | None = None,
        keep: int = 1000,
        reports: ReportSimulator | None = None,
    ) -> None:
        self._echo = echo
        self._stream = stream
        self.reports = reports
        self.outbox: collections.deque[SandboxMessage] = collections.deque(maxlen=keep)

    async def submit(self, message: SmsMessage) -> SubmitReceipt:
        message_id = f"sbx-{secrets.token_hex(8)}"
        self.outbox.append(
            SandboxMessage(
                to=message.to,
                text=message.text,
                sender=message.sender,
                external_id=message.external_id,
                provider_message_id=message_id,
                at_ms=time.time_ns() // 1_000_000,
            )
        )
        if self._echo:
            # Development only: the sandbox is the phone. Never a logger, so log capture in
            # production-like setups cannot pick the code up.
            stream = self._stream or sys.stdout
            stream.write(f"[sandbox SMS to {message.to} from {message.sender}] {message.text}\n")
            stream.flush()
        if self.reports is not None:
            self.reports.schedule(message.external_id)
        return SubmitReceipt(provider_message_id=message_id, provider_status="accepted")

    def last_to(self, e164: str) -> SandboxMessage | None:
        for sent in reversed(self.outbox):
            if sent.to == e164:
                return sent
        return None

    def sent_to(self, e164: str) -> list[SandboxMessage]:
        """The SMS kept for `e164`, newest first."""
        return [sent for sent in reversed(self.outbox) if sent.to == e164]

    async def aclose(self) -> None:
        if self.reports is not None:
            await self.reports.aclose()
