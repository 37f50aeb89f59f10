"""argon2id keyed with the server pepper, run in a bounded thread pool off the event loop.

The pepper is argon2's secret input (K), so a Redis dump without it cannot be brute-forced even
though codes have only 10^6 values. argon2-cffi's high-level API has no secret input, so this
module drives the C core directly, as argon2-cffi's documentation shows for `core()`.

Admission control lives here too: a request that would wait longer than `max_wait` seconds for
the pool is refused (Overloaded) before it takes an attempt, a send or a hash. The wait is
estimated from the hashes ahead of it and the time a hash has recently taken, which already
includes contention for the cores (with other worker processes, for instance). A request holds
its place from admission until its hash is done (not while it then writes to Redis). Checks go
first: they are admitted until the wait reaches VERIFY_HEADROOM times the bound, because a check
finishes a login whose SMS is already paid for, while a shed start costs nothing yet.
"""

from __future__ import annotations

import asyncio
import hmac
import math
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from contextvars import ContextVar

from argon2.exceptions import HashingError

# argon2-cffi documents `lib` beside `ffi` for core() users, but does not list it in __all__.
from argon2.low_level import (  # type: ignore[attr-defined]
    ARGON2_VERSION,
    Type,
    core,
    error_to_str,
    ffi,
    lib,
)

from otpservice import metrics
from otpservice.errors import Overloaded
from otpservice.settings import Argon2Params, Secret

SALT_BYTES = 16
_EWMA_WEIGHT = 0.1
VERIFY_HEADROOM = 3.0
_holding: ContextVar[list[bool] | None] = ContextVar("argon2_place", default=None)
"""The current request's place in the queue: [True] until its hash is done."""


class CodeHasher:
    """Hashes codes with one verification's salt; one computation serves any number of digests."""

    def __init__(
        self, params: Argon2Params, pepper: Secret, threads: int, max_wait: float = 0.1
    ) -> None:
        self._params = params
        self._pepper = pepper.reveal()
        self._threads = threads
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="argon2")
        self._max_wait = max_wait
        self._admitted = 0
        started = time.perf_counter()
        self.hash_code("0" * 6, b"\0" * SALT_BYTES)
        self._hash_seconds = time.perf_counter() - started
        """Recent time of one hash (EWMA), measured in the pool: it rises with contention."""

    @property
    def expected_wait(self) -> float:
        """Seconds a request admitted now would wait for the pool before its hash starts."""
        return math.floor(self._admitted / self._threads) * self._hash_seconds

    @property
    def saturated(self) -> bool:
        """Too busy for a start or a resend."""
        return self.saturated_for("start")

    def saturated_for(self, operation: str) -> bool:
        bound = self._max_wait * (VERIFY_HEADROOM if operation == "verify" else 1.0)
        return self.expected_wait > bound

    @contextmanager
    def admit(self, operation: str) -> Iterator[None]:
        """Hold a place in the pool's queue for one request's hashing, or shed it."""
        if self.saturated_for(operation):
            metrics.count_shed(operation)
            raise Overloaded
        self._admitted += 1
        place = [True]
        token = _holding.set(place)
        try:
            yield
        finally:
            _holding.reset(token)
            self._leave(place)

    def _leave(self, place: list[bool]) -> None:
        if place[0]:
            place[0] = False
            self._admitted -= 1

    @property
    def params(self) -> Argon2Params:
        return self._params

    def hash_code(self, code: str, salt: bytes) -> bytes:
        """The raw argon2id digest of `code` under `salt` and the pepper (blocking: ~10 ms)."""
        params = self._params
        pwd = code.encode()
        # cffi objects must stay referenced until core() returns.
        out = ffi.new("uint8_t[]", params.hash_len)
        cpwd = ffi.new("uint8_t[]", pwd)
        csalt = ffi.new("uint8_t[]", salt)
        csecret = ffi.new("uint8_t[]", self._pepper)
        context = ffi.new(
            "argon2_context *",
            {
                "version": ARGON2_VERSION,
                "out": out,
                "outlen": params.hash_len,
                "pwd": cpwd,
                "pwdlen": len(pwd),
                "salt": csalt,
                "saltlen": len(salt),
                "secret": csecret,
                "secretlen": len(self._pepper),
                "ad": ffi.NULL,
                "adlen": 0,
                "t_cost": params.time_cost,
                "m_cost": params.memory_kib,
                "lanes": params.parallelism,
                "threads": params.parallelism,
                "allocate_cbk": ffi.NULL,
                "free_cbk": ffi.NULL,
                # Wipe the password and secret copies argon2 makes internally.
                "flags": lib.ARGON2_FLAG_CLEAR_PASSWORD | lib.ARGON2_FLAG_CLEAR_SECRET,
            },
        )
        result = core(context, Type.ID.value)
        if result != lib.ARGON2_OK:
            raise HashingError(error_to_str(result))
        digest = bytes(ffi.buffer(out, params.hash_len))
        ffi.memmove(cpwd, b"\0" * len(pwd), len(pwd))
        return digest

    def _timed_hash(self, code: str, salt: bytes) -> bytes:
        started = time.perf_counter()
        digest = self.hash_code(code, salt)
        elapsed = time.perf_counter() - started
        self._hash_seconds += _EWMA_WEIGHT * (elapsed - self._hash_seconds)
        return digest

    async def hash_code_async(self, code: str, salt: bytes) -> bytes:
        """hash_code in the bounded pool: the event loop never runs argon2."""
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._pool, self._timed_hash, code, salt)
        finally:
            # Hashed: the request's Redis writes that follow do not hold up the queue.
            place = _holding.get()
            if place is not None:
                self._leave(place)

    def shutdown(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


def matching_digest(candidate: bytes, stored: list[bytes]) -> int:
    """Index of the stored digest equal to `candidate`, or -1; every comparison constant-time.

    All digests are compared, with no early exit, so the time does not tell which one matched.
    """
    found = -1
    for index, digest in enumerate(stored):
        if hmac.compare_digest(candidate, digest) and found < 0:
            found = index
    return found
