"""The sandbox gateway: accepts every SMS without sending it. Development and tests only.

It keeps the last messages in memory (tests read codes from there) and, in development mode,
prints each SMS to stdout so a developer sees the code. It is never active in production mode.
"""

from __future__ import annotations

import collections
import secrets
import sys
from typing import TextIO

import msgspec

from otpservice.providers.base import SmsMessage, SubmitReceipt


class SandboxMessage(msgspec.Struct, frozen=True):
    to: str
    text: str
    sender: str
    external_id: str
    provider_message_id: str


class SandboxGateway:
    name = "sandbox"

    def __init__(self, *, echo: bool, stream: TextIO | None = None, keep: int = 1000) -> None:
        self._echo = echo
        self._stream = stream
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
            )
        )
        if self._echo:
            # Development only: the sandbox is the phone. Never a logger, so log capture in
            # production-like setups cannot pick the code up.
            stream = self._stream or sys.stdout
            stream.write(f"[sandbox SMS to {message.to} from {message.sender}] {message.text}\n")
            stream.flush()
        return SubmitReceipt(provider_message_id=message_id, provider_status="accepted")

    def last_to(self, e164: str) -> SandboxMessage | None:
        for sent in reversed(self.outbox):
            if sent.to == e164:
                return sent
        return None

    async def aclose(self) -> None:
        return None
