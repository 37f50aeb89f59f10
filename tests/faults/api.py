"""The service's HTTP API and metrics as the fault tests drive them; every wait is bounded."""

from __future__ import annotations

import asyncio
import base64
import itertools
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx

from otpservice.ids import Identifiers
from otpservice.settings import Secret
from tests.cluster.conftest import until
from tests.faults.config import BRIEF_KEY
from tests.integration.conftest import API_KEY, PEPPER
from tests.support.fake_provider import Inbox, Sms

HEADERS = {"Authorization": f"Bearer {API_KEY}"}
BRIEF_HEADERS = {"Authorization": f"Bearer {BRIEF_KEY}"}
PROVIDER = "messageflow"

_numbers = itertools.count(1)
_IDS = Identifiers(Secret(base64.b64decode(PEPPER)))


def reference(verification_id: str, tenant: str = "acme") -> str:
    """The reference a verification's SMS carry (their externalId is `<reference>-<send>`):
    the service's internal name for it, which the id its clients see does not show."""
    ref = _IDS.ref_for_id(verification_id, tenant)
    assert ref is not None, verification_id
    return ref.text


def new_number() -> str:
    """A Polish mobile number no other request of this test session used."""
    return f"+48601{next(_numbers):06d}"


def client(base_url: str, timeout: float = 5.0) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=base_url, headers=HEADERS, timeout=timeout)


async def start(http: httpx.AsyncClient, headers: dict[str, str] | None = None) -> httpx.Response:
    """POST /otp/start for a fresh number, as `acme` unless other headers are given."""
    return await http.post("/otp/start", json={"to": new_number()}, headers=headers)


async def started(http: httpx.AsyncClient, headers: dict[str, str] | None = None) -> dict[str, Any]:
    response = await start(http, headers)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def verify(http: httpx.AsyncClient, verification_id: str, code: str) -> httpx.Response:
    return await http.post("/otp/verify", json={"id": verification_id, "code": code})


async def wait_until(what: str, probe: Callable[[], Any], timeout: float = 10.0) -> Any:
    """Poll `probe()` (plain or async) until it returns something truthy; fail after timeout."""

    async def call() -> Any:
        found = probe()
        return await found if isinstance(found, Awaitable) else found

    return await until(what, call, timeout=timeout, interval=0.05)


async def accepted_sms(
    inbox: Inbox,
    verification_id: str,
    *,
    tenant: str = "acme",
    provider: str | None = None,
    timeout: float = 20.0,
) -> Sms:
    """The first SMS of this verification a fake provider accepted (from `provider` if named)."""
    sent_as = reference(verification_id, tenant)

    def found() -> Sms | None:
        return next(
            (s for s in inbox.accepted(sent_as) if provider is None or s.provider == provider),
            None,
        )

    where = f" by provider {provider}" if provider else ""
    sms: Sms = await wait_until(f"the SMS of {verification_id} accepted{where}", found, timeout)
    return sms


def epoch(iso: str) -> float:
    """An API timestamp (whole seconds, UTC) as time.time() seconds."""
    return datetime.strptime(iso, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()


@dataclass
class Outcome:
    """One request of a load run."""

    began: float
    """time.monotonic() when it was sent."""
    seconds: float
    response: httpx.Response | None = None
    error: Exception | None = None

    @property
    def ended(self) -> float:
        return self.began + self.seconds

    @property
    def status(self) -> int | None:
        return self.response.status_code if self.response is not None else None


async def timed(call: Awaitable[httpx.Response]) -> Outcome:
    began = time.monotonic()
    try:
        response = await call
    except Exception as exc:  # the caller judges which errors are allowed
        return Outcome(began, time.monotonic() - began, error=exc)
    return Outcome(began, time.monotonic() - began, response=response)


async def load(
    send: Callable[[], Awaitable[httpx.Response]],
    *,
    until_: Callable[[], bool],
    concurrency: int,
    max_requests: int = 2000,
    max_seconds: float = 30.0,
) -> list[Outcome]:
    """`concurrency` loops calling `send()` back to back until `until_()` is true, at most
    `max_requests` requests or `max_seconds` in all."""
    outcomes: list[Outcome] = []
    hard_stop = time.monotonic() + max_seconds

    async def loop() -> None:
        while not until_() and len(outcomes) < max_requests and time.monotonic() < hard_stop:
            outcomes.append(await timed(send()))
            await asyncio.sleep(0)

    await asyncio.gather(*(loop() for _ in range(concurrency)))
    return outcomes
