"""The use cases wired to the in-memory repositories, a clock the test moves, and a lane that
only collects what it is given: no Redis, no network, no thread but argon2's pool."""

from __future__ import annotations

import hashlib
from typing import Any

import msgspec

from otpservice.domain.policy import Limits, Policy
from otpservice.hashing import CodeHasher
from otpservice.ids import Identifiers, parse_message_ref
from otpservice.lane import SendJob
from otpservice.sealing import CodeSealer
from otpservice.settings import ARGON2_PROFILES, Secret, Tenant
from otpservice.usecases.checking import CheckCodes
from otpservice.usecases.composing import SmsComposer
from otpservice.usecases.deliveries import RecordDeliveries
from otpservice.usecases.fraud import FraudGuard
from otpservice.usecases.idempotency import IdempotentStarts
from otpservice.usecases.managing import ManageVerifications
from otpservice.usecases.memory import MemoryFraud, MemoryIdempotency, MemoryVerifications
from otpservice.usecases.sending import SendCodes

PEPPER = Secret(b"p" * 32)
NUMBER = "+48601234567"
RETENTION_MS = 3_600_000


class Clock:
    """Milliseconds since the epoch, moved only by the test."""

    def __init__(self) -> None:
        self.now = 1_764_000_000_000

    def __call__(self) -> int:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += int(seconds * 1000)


class Queue:
    """The lane as the sending use case sees it: it only keeps the jobs."""

    def __init__(self) -> None:
        self.jobs: list[SendJob] = []

    def enqueue(self, job: SendJob) -> None:
        self.jobs.append(job)

    def code_to(self, to: str = NUMBER) -> str:
        """The code in the last SMS to `to`."""
        job = next(j for j in reversed(self.jobs) if j.message.to == to)
        return next(w.strip(".:,#") for w in job.message.text.split() if w.strip(".").isdigit())


def tenant(name: str = "acme", **policy: Any) -> Tenant:
    limits = policy.pop("limits", {})
    return Tenant(
        name=name,
        api_key_digests=(hashlib.sha256(name.encode()).digest(),),
        sender="Acme",
        app_name="Acme",
        policy=msgspec.structs.replace(Policy(**policy), limits=Limits(**limits)),
    )


class World:
    def __init__(self) -> None:
        self.clock = Clock()
        self.store = MemoryVerifications(self.clock)
        self.queue = Queue()
        self.ids = Identifiers(PEPPER)
        self.hasher = CodeHasher(ARGON2_PROFILES["test"], PEPPER, 1)
        self.acme = tenant()
        self.other = tenant("other")
        composer = SmsComposer(
            {t.name: t for t in (self.acme, self.other)}, CodeSealer(PEPPER), None
        )
        self.fraud = MemoryFraud()
        self.guard = FraudGuard(self.fraud, self.ids, self.clock)
        self.sending = SendCodes(
            self.store,
            self.store,
            hasher=self.hasher,
            composer=composer,
            queue=self.queue,
            ids=self.ids,
            guard=self.guard,
            provider="sandbox",
            retention_ms=RETENTION_MS,
            deliveries=self.store,
        )
        self.checking = CheckCodes(self.store, self.hasher, self.ids, self.guard)
        self.managing = ManageVerifications(self.store, self.ids)
        self.deliveries = RecordDeliveries(
            self.store, provider="sandbox", retention_ms=RETENTION_MS
        )
        self.idempotency = MemoryIdempotency(self.clock)
        self.starts = IdempotentStarts(self.idempotency, ttl_ms=86_400_000)

    def close(self) -> None:
        self.hasher.shutdown()

    async def start(self, to: str = NUMBER, tenant: Tenant | None = None, **kw: Any) -> Any:
        return await self.sending.start(
            tenant or self.acme,
            to=to,
            locale=kw.pop("locale", None),
            app_hash=kw.pop("app_hash", None),
            client_ref=kw.pop("client_ref", None),
            client_ip=kw.pop("client_ip", "192.0.2.1"),
            end_user_ip=kw.pop("end_user_ip", None),
        )

    async def verify(self, code: str, tenant: Tenant | None = None, **by: str) -> Any:
        return await self.checking.verify(
            tenant or self.acme, verification_id=by.get("id"), to=by.get("to"), code=code
        )

    def last_send(self) -> Any:
        """(verification reference, send number) of the last SMS queued."""
        found = parse_message_ref(self.queue.jobs[-1].message.external_id)
        assert found is not None
        return found
