"""One-time codes: generated with the OS CSPRNG, checked for shape before any hashing."""

from __future__ import annotations

import secrets

from otpservice.errors import InvalidCodeFormat

MIN_CODE_LENGTH = 4
MAX_CODE_LENGTH = 10


def generate_code(length: int) -> str:
    """A uniformly random string of `length` decimal digits (leading zeros included)."""
    if not MIN_CODE_LENGTH <= length <= MAX_CODE_LENGTH:
        raise ValueError(f"code length must be {MIN_CODE_LENGTH}-{MAX_CODE_LENGTH}")
    return f"{secrets.randbelow(10**length):0{length}d}"


def check_code_format(code: str, length: int) -> None:
    """Refuse a code that could never match, so it costs no attempt and no argon2 work."""
    # str.isdigit() accepts non-ASCII digits such as '٣'; only ASCII 0-9 can ever match.
    if len(code) != length or not code.isascii() or not code.isdigit():
        raise InvalidCodeFormat(f"The code must be exactly {length} digits.")
