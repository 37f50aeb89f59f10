"""Who may use the support console: sign-in (rate-limited, the same work for an unknown name
as for a known one), server-side sessions with an idle and an absolute timeout, sign-out.

Session ids live only in the browser's cookie; the store keeps a keyed digest of each, so a
Redis dump holds no usable session. A session also remembers a fingerprint of its user's
password hash: changing a user's hash (or removing the user) in the configuration ends their
sessions at their next request.
"""

from __future__ import annotations

import base64
import hmac
import re
import secrets
from collections.abc import Sequence
from typing import Protocol

import msgspec

from otpservice.settings import Secret, SupportUser

IDLE_MS = 30 * 60_000
ABSOLUTE_MS = 12 * 3_600_000
USER_FAILURES = 5
IP_FAILURES = 20
FAILURE_WINDOW_MS = 15 * 60_000
MAX_PASSWORD = 1024
_SESSION_ID = re.compile(r"[A-Za-z0-9_-]{43}")


class SessionRecord(msgspec.Struct, frozen=True, kw_only=True):
    user: str
    fingerprint: str
    created_ms: int
    now_ms: int


class SessionStore(Protocol):
    async def open(
        self, digest: str, *, user: str, fingerprint: str, idle_ms: int, absolute_ms: int
    ) -> None: ...

    async def touch(self, digest: str, *, idle_ms: int) -> SessionRecord | None:
        """The session, its idle expiry pushed back; None when it is gone or past its end."""
        ...

    async def close(self, digest: str) -> None: ...


class SignInLimiter(Protocol):
    async def take(
        self, user_digest: str, ip_digest: str, *, user_limit: int, ip_limit: int, window_ms: int
    ) -> int:
        """Count one attempt: 0, or the ms to wait when either limit is reached."""
        ...

    async def succeeded(self, user_digest: str, ip_digest: str) -> None: ...


class PasswordChecker(Protocol):
    async def verify(self, password_hash: str | None, password: str) -> bool:
        """Whether `password` matches; None: an unknown user, checked against a dummy hash of
        the same cost (and always False). Off the event loop; SignInBusy when too many wait."""
        ...


class SignInRefused(Exception):
    """Wrong name or password: one message for both."""


class SignInLimited(Exception):
    def __init__(self, wait_ms: int) -> None:
        super().__init__("too many failed sign-ins")
        self.minutes = max(1, -(-wait_ms // 60_000))


class SignInBusy(Exception):
    """Too many password checks are running already: try again in a moment."""


class ConsoleAccess:
    def __init__(
        self,
        users: Sequence[SupportUser],
        pepper: Secret,
        *,
        sessions: SessionStore,
        limiter: SignInLimiter,
        passwords: PasswordChecker,
    ) -> None:
        self.users = {u.name: u for u in users}
        self._key = hmac.digest(pepper.reveal(), b"otpservice/console/v1", "sha256")
        self.sessions = sessions
        self.limiter = limiter
        self.passwords = passwords

    def _digest(self, kind: str, value: str) -> str:
        mac = hmac.digest(self._key, f"{kind}\0{value}".encode(), "sha256")
        return mac.hex()[:32]

    def session_digest(self, session_id: str) -> str:
        """What the store names a session by."""
        return self._digest("session", session_id)

    def fingerprint(self, user: SupportUser) -> str:
        return self._digest("password", user.password_hash.reveal().decode())

    async def sign_in(self, name: str, password: str, ip: str) -> tuple[SupportUser, str]:
        """(the user, a new session id), or SignInRefused / SignInLimited / SignInBusy."""
        user_digest = self._digest("user", name.strip().casefold())
        ip_digest = self._digest("ip", ip)
        wait_ms = await self.limiter.take(
            user_digest,
            ip_digest,
            user_limit=USER_FAILURES,
            ip_limit=IP_FAILURES,
            window_ms=FAILURE_WINDOW_MS,
        )
        if wait_ms > 0:
            raise SignInLimited(wait_ms)
        user = self.users.get(name)
        if len(password) > MAX_PASSWORD:
            raise SignInRefused
        # An unknown name costs the same argon2 work as a known one: timing tells nothing.
        stored = user.password_hash.reveal().decode() if user is not None else None
        if not await self.passwords.verify(stored, password) or user is None:
            raise SignInRefused
        await self.limiter.succeeded(user_digest, ip_digest)
        session_id = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=")
        await self.sessions.open(
            self.session_digest(session_id),
            user=user.name,
            fingerprint=self.fingerprint(user),
            idle_ms=IDLE_MS,
            absolute_ms=ABSOLUTE_MS,
        )
        return user, session_id

    async def user_for(self, session_id: str | None) -> SupportUser | None:
        """The user of a live session (its idle timeout restarted), or None."""
        if not session_id or not _SESSION_ID.fullmatch(session_id):
            return None
        digest = self.session_digest(session_id)
        found = await self.sessions.touch(digest, idle_ms=IDLE_MS)
        if found is None:
            return None
        user = self.users.get(found.user)
        if user is None or not hmac.compare_digest(found.fingerprint, self.fingerprint(user)):
            await self.sessions.close(digest)
            return None
        return user

    async def sign_out(self, session_id: str | None) -> None:
        if session_id and _SESSION_ID.fullmatch(session_id):
            await self.sessions.close(self.session_digest(session_id))
