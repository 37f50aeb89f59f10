"""The fraud guard's state in Redis: day and hour counters, blocks and the safe list of each
tenant, all in the tenant's slot (keys.FraudKeys). The decision itself runs in send_precheck's
round trip (store/verifications.py); this module settles sends afterwards and serves the
tenant's view of blocks and its safe list."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import msgspec
from redis.exceptions import RedisError

from otpservice.errors import OtpError
from otpservice.store import keys
from otpservice.store.client import ScriptCall, StoreClient
from otpservice.store.replies import FraudReply, decode_reply
from otpservice.usecases.ports import FraudBlock, FraudQuery, FraudVerdict

SAFE_LIST_KEPT_MS = 400 * 86_400_000
"""A safe list nobody touched for this long expires (every key has a TTL)."""
APPROVALS_FLUSH_SECONDS = 0.5
"""Approvals wait this long to be settled together: one round trip for many logins (at 50 ms a
batch held 3 to 5 approvals per process and a verify still cost 2.3 round trips on average;
half a second makes it about 2.0, and delays only the lifting of a block by an approval)."""
_query_encoder = msgspec.json.Encoder()
log = logging.getLogger(__name__)


class _StoredBlock(msgspec.Struct, frozen=True):
    until: int
    level: int
    rule: str
    figure: int
    limit: int
    window: str
    at: int
    country: str = ""


_block_decoder = msgspec.json.Decoder(_StoredBlock)


def check_call(query: FraudQuery, event_tenants: str = "") -> ScriptCall:
    """The fraud_check script's call for `query`, to run beside the send pre-check.
    `event_tenants`: the tenants with event webhooks, ' a b ' (a block is a `fraud.blocked`)."""
    found = keys.FraudKeys(query.tenant)
    payload = {
        **msgspec.structs.asdict(query),
        "day_end_ms": keys.day_end_ms(query.now_ms),
        "hour_end_ms": keys.hour_end_ms(query.now_ms),
        "event_tenants": event_tenants,
    }
    return ("fraud_check", found.for_check(query.now_ms), [_query_encoder.encode(payload)])


def decode_verdict(raw: Any) -> FraudVerdict:
    reply = decode_reply(raw, FraudReply)
    return FraudVerdict(
        verdict=reply.verdict,
        rule=reply.rule,
        figure=reply.figure,
        limit=reply.limit,
        window=reply.window,
        until_ms=reply.until_ms,
        level=reply.level,
    )


class RedisFraud:
    """Approvals are settled in batches, off the request path: a verify keeps its two round
    trips, and a batch of approvals costs one. A block is thus lifted up to
    APPROVALS_FLUSH_SECONDS after the approval that lifts it; a process killed in between loses
    its batch (those approvals still count as unverified sends: the guard errs towards caution).
    `aclose` settles what is waiting."""

    def __init__(self, store: StoreClient, flush_seconds: float = APPROVALS_FLUSH_SECONDS) -> None:
        self.store = store
        self._flush_seconds = flush_seconds
        self._approvals: list[ScriptCall] = []
        self._flusher: asyncio.Task[None] | None = None

    async def settle(
        self,
        *,
        tenant: str,
        approved: bool,
        country: str,
        prefix: str,
        ip: str,
        sends: int,
        now_ms: int,
    ) -> None:
        found = keys.FraudKeys(tenant)
        call: ScriptCall = (
            "fraud_settle",
            [found.blocks, found.day(now_ms), found.hour(now_ms)],
            ["approved" if approved else "released", country, prefix, ip, now_ms, sends],
        )
        if not approved:
            # Taking back a send that did not happen must land before the next decision.
            await self.store.script(*call)
            return
        self._approvals.append(call)
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.get_running_loop().create_task(self._flush_soon())

    async def _flush_soon(self) -> None:
        await asyncio.sleep(self._flush_seconds)
        await self.flush()

    async def flush(self) -> None:
        """Settle the approvals waiting now, in one round trip per server."""
        while self._approvals:
            batch, self._approvals = self._approvals[:512], self._approvals[512:]
            try:
                await self.store.scripts("fraud_settle", batch)
            except (OtpError, RedisError) as exc:
                # Those approvals are lost to the figures: their sends stay unverified.
                log.warning("fraud guard: %d approvals not counted: %s", len(batch), exc)

    async def aclose(self) -> None:
        if self._flusher is not None:
            await self._flusher
        await self.flush()

    async def blocks(self, tenant: str, now_ms: int) -> list[FraudBlock]:
        raw = await self._admin(tenant, "blocks", now_ms)
        out = []
        for i in range(0, len(raw), 2):
            stored = _block_decoder.decode(raw[i + 1])
            out.append(
                FraudBlock(
                    key=raw[i].decode(),
                    rule=stored.rule,
                    figure=stored.figure,
                    limit=stored.limit,
                    window=stored.window,
                    until_ms=stored.until,
                    at_ms=stored.at,
                    level=stored.level,
                    country=stored.country,
                )
            )
        return sorted(out, key=lambda b: b.at_ms)

    async def lift(self, tenant: str, key: str, now_ms: int) -> bool:
        return bool(await self._admin(tenant, "lift", now_ms, key))

    async def safe_list(
        self, tenant: str, *, add: str | None = None, remove: str | None = None
    ) -> list[str]:
        if add is not None:
            raw = await self._admin(tenant, "safe_add", 0, add)
        elif remove is not None:
            raw = await self._admin(tenant, "safe_remove", 0, remove)
        else:
            raw = await self._admin(tenant, "safe_list", 0)
        return sorted(m.decode() for m in raw)

    async def _admin(self, tenant: str, action: str, now_ms: int, item: str = "") -> Any:
        found = keys.FraudKeys(tenant)
        return await self.store.script(
            "fraud_admin",
            [found.blocks, found.safe, found.day(now_ms), found.hour(now_ms)],
            [action, now_ms, item, SAFE_LIST_KEPT_MS],
        )
