"""Idempotency-Key state in Redis: reserve, complete with the response, or release."""

from __future__ import annotations

from otpservice.store import keys
from otpservice.store.client import StoreClient
from otpservice.store.replies import IdempotencyReply, decode_reply
from otpservice.usecases.ports import IdempotencyState


class RedisIdempotency:
    def __init__(self, store: StoreClient) -> None:
        self.store = store

    async def reserve(
        self, tenant: str, key: str, fingerprint: str, ttl_ms: int
    ) -> IdempotencyState:
        raw = await self.store.script(
            "idempotency_reserve", [keys.idempotency(tenant, key)], [fingerprint, ttl_ms]
        )
        reply = decode_reply(raw, IdempotencyReply)
        return IdempotencyState(verdict=reply.verdict, response=reply.response)

    async def complete(self, tenant: str, key: str, fingerprint: str, response: bytes) -> None:
        value = b"d|" + fingerprint.encode() + b"|" + response
        await self.store.call(
            "idempotency_complete",
            self.store.redis.set(keys.idempotency(tenant, key), value, xx=True, keepttl=True),
        )

    async def release(self, tenant: str, key: str) -> None:
        await self.store.call(
            "idempotency_release", self.store.redis.delete(keys.idempotency(tenant, key))
        )
