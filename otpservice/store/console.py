"""The support console's own keys (keys.py, slot `{console}`): sessions, the sign-in limit and
the audit trail. The two read-then-write steps are scripts (console_session.lua,
console_login.lua), registered here rather than with the request path's scripts."""

from __future__ import annotations

from typing import Any, Literal, cast

from redis.commands.core import AsyncScript

from otpservice.store import keys
from otpservice.store.client import StoreClient
from otpservice.store.scripts import script_source
from otpservice.usecases.console_access import SessionRecord
from otpservice.usecases.support import AuditEntry

AUDIT_DAYS = 30
AUDIT_KEPT_MS = AUDIT_DAYS * 86_400_000
AUDIT_MAX_ENTRIES = 100_000
"""A cap per tenant, whatever the rate of lookups: the stream stays bounded."""
_SCRIPTS = ("console_session", "console_login")


class RedisConsole:
    """SessionStore and SignInLimiter (usecases/console_access.py), AuditTrail (support.py)."""

    def __init__(self, store: StoreClient) -> None:
        self.store = store
        self._scripts: dict[str, AsyncScript] = {
            name: store.redis.register_script(script_source(name)) for name in _SCRIPTS
        }

    async def _script(self, name: str, call_keys: list[str], args: list[Any]) -> Any:
        return await self.store.call(name, self._scripts[name](keys=call_keys, args=args))

    # --- sessions ---------------------------------------------------------------------------

    async def open(
        self, digest: str, *, user: str, fingerprint: str, idle_ms: int, absolute_ms: int
    ) -> None:
        await self._script(
            "console_session",
            [keys.console_session(digest)],
            ["open", idle_ms, user, fingerprint, absolute_ms],
        )

    async def touch(self, digest: str, *, idle_ms: int) -> SessionRecord | None:
        reply = await self._script(
            "console_session", [keys.console_session(digest)], ["touch", idle_ms]
        )
        if not reply:
            return None
        user, fingerprint, created, now = (_text(v) for v in reply)
        return SessionRecord(
            user=user, fingerprint=fingerprint, created_ms=int(created), now_ms=int(now)
        )

    async def close(self, digest: str) -> None:
        await self.store.call(
            "console_session", self.store.redis.delete(keys.console_session(digest))
        )

    # --- the sign-in limit ------------------------------------------------------------------

    async def take(
        self, user_digest: str, ip_digest: str, *, user_limit: int, ip_limit: int, window_ms: int
    ) -> int:
        reply = await self._script(
            "console_login",
            [keys.console_login_user(user_digest), keys.console_login_ip(ip_digest)],
            ["take", user_limit, ip_limit, window_ms],
        )
        return int(reply[0])

    async def succeeded(self, user_digest: str, ip_digest: str) -> None:
        await self._script(
            "console_login",
            [keys.console_login_user(user_digest), keys.console_login_ip(ip_digest)],
            ["succeeded"],
        )

    # --- the audit trail --------------------------------------------------------------------

    async def record(self, entry: AuditEntry) -> None:
        key = keys.console_audit(entry.tenant)
        fields: dict[Any, Any] = {
            "at": str(entry.at_ms),
            "u": entry.user,
            "k": entry.kind,
            "q": entry.query,
            "n": str(entry.found),
        }

        async def write() -> None:
            # One MULTI on one key: the entry, the trims (age, then count) and the stream's TTL.
            async with self.store.redis.pipeline(transaction=True) as pipe:
                pipe.xadd(key, fields, minid=str(entry.at_ms - AUDIT_KEPT_MS), approximate=True)
                pipe.xtrim(key, maxlen=AUDIT_MAX_ENTRIES, approximate=True)
                pipe.pexpire(key, AUDIT_KEPT_MS)
                await pipe.execute()

        await self.store.call("console_audit", write())

    async def recent(self, tenant: str, limit: int) -> list[AuditEntry]:
        rows = await self.store.call(
            "console_audit", self.store.redis.xrevrange(keys.console_audit(tenant), count=limit)
        )
        entries = []
        for _, raw in rows or []:
            fields = {_text(k): _text(v) for k, v in (raw or {}).items()}
            kind = fields.get("k", "number")
            entries.append(
                AuditEntry(
                    at_ms=int(fields.get("at", "0") or 0),
                    user=fields.get("u", ""),
                    tenant=tenant,
                    kind=cast("Literal['number', 'id']", kind if kind == "id" else "number"),
                    query=fields.get("q", ""),
                    found=int(fields.get("n", "0") or 0),
                )
            )
        return entries


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
