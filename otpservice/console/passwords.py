"""Support users' passwords: argon2id with a strong profile (RFC 9106's low-memory one:
64 MiB, 3 passes, 4 lanes; about 0.2 s), nothing like the cheap profile of codes, whose
strength is the pepper. Hashes are made by `otpservice hash-password` and checked here off the
event loop, in a small pool with a bounded queue: a burst of sign-ins cannot starve the
service, and one too many is told to try again."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor

from argon2 import PasswordHasher, extract_parameters, profiles
from argon2.exceptions import VerifyMismatchError

from otpservice.usecases.console_access import SignInBusy

PROFILE = profiles.RFC_9106_LOW_MEMORY
MIN_PASSWORD = 12


def hash_password(password: str) -> str:
    """The PHC string ($argon2id$v=19$m=65536,t=3,p=4$...) of a new password."""
    if len(password) < MIN_PASSWORD:
        raise ValueError(f"a support user's password needs at least {MIN_PASSWORD} characters")
    return PasswordHasher.from_parameters(PROFILE).hash(password)


def _matches(password_hash: str, password: str) -> bool:
    try:
        return PasswordHasher().verify(password_hash, password)
    except VerifyMismatchError:
        return False


def _dummy_hash(reference: str | None) -> str:
    """A hash nobody knows the password of, at the cost of the configured users' hashes."""
    parameters = extract_parameters(reference) if reference else PROFILE
    return PasswordHasher.from_parameters(parameters).hash(secrets.token_urlsafe(32))


class PasswordVerifier:
    """PasswordChecker (usecases/console_access.py) in a pool of `threads` with at most
    `max_pending` checks admitted at once."""

    def __init__(
        self, configured: Sequence[str], *, threads: int = 2, max_pending: int = 8
    ) -> None:
        self._reference = configured[0] if configured else None
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="console-argon2")
        self._max_pending = max_pending
        self._pending = 0
        self._dummy: Future[str] | None = None

    def prepare(self) -> None:
        """Start making the dummy hash (shown the sign-in form, a user will soon need it)."""
        if self._dummy is None:
            self._dummy = self._pool.submit(_dummy_hash, self._reference)

    async def verify(self, password_hash: str | None, password: str) -> bool:
        if self._pending >= self._max_pending:
            raise SignInBusy
        self._pending += 1
        try:
            target = password_hash
            if target is None:
                self.prepare()
                assert self._dummy is not None
                target = await asyncio.wrap_future(self._dummy)
            matched = await asyncio.get_running_loop().run_in_executor(
                self._pool, _matches, target, password
            )
            return matched and password_hash is not None
        finally:
            self._pending -= 1

    def shutdown(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
