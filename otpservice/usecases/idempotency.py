"""Idempotent starts (`Idempotency-Key`): the same key and body within the TTL replay the first
response and send nothing; another body is a conflict; a request that failed frees its key."""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable

from otpservice.errors import IdempotencyConflict, OtpError
from otpservice.settings import Tenant
from otpservice.usecases.ports import IdempotencyRepository


class IdempotentStarts:
    def __init__(self, repository: IdempotencyRepository, *, ttl_ms: int) -> None:
        self.repository = repository
        self.ttl_ms = ttl_ms

    async def run(
        self, tenant: Tenant, key: str, body: bytes, produce: Callable[[], Awaitable[bytes]]
    ) -> tuple[bytes, bool]:
        """The response (as stored bytes) and whether it is a replay. `body` is the request in
        a canonical encoding; `produce` runs the start and encodes its response."""
        fingerprint = hashlib.sha256(tenant.name.encode() + b"\0" + body).hexdigest()
        state = await self.repository.reserve(tenant.name, key, fingerprint, self.ttl_ms)
        if state.verdict == "conflict":
            raise IdempotencyConflict(
                "This Idempotency-Key was used with a different request body."
            )
        if state.verdict == "in_progress":
            raise IdempotencyConflict("A request with this Idempotency-Key is still in progress.")
        if state.verdict == "replay":
            return state.response, True
        try:
            response = await produce()
        except OtpError:
            # Nothing was stored or sent: free the key so the client may retry with it.
            await self.repository.release(tenant.name, key)
            raise
        await self.repository.complete(tenant.name, key, fingerprint, response)
        return response, False
