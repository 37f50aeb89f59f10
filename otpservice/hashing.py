"""argon2id keyed with the server pepper, run in a bounded thread pool off the event loop.

The pepper is argon2's secret input (K), so a Redis dump without it cannot be brute-forced even
though codes have only 10^6 values. argon2-cffi's high-level API has no secret input, so this
module drives the C core directly, as argon2-cffi's documentation shows for `core()`.
"""

from __future__ import annotations

import asyncio
import hmac
from concurrent.futures import ThreadPoolExecutor

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

from otpservice.settings import Argon2Params, Secret

SALT_BYTES = 16


class CodeHasher:
    """Hashes codes with one verification's salt; one computation serves any number of digests."""

    def __init__(self, params: Argon2Params, pepper: Secret, threads: int) -> None:
        self._params = params
        self._pepper = pepper.reveal()
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="argon2")

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

    async def hash_code_async(self, code: str, salt: bytes) -> bytes:
        """hash_code in the bounded pool: the event loop never runs argon2."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, self.hash_code, code, salt)

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
