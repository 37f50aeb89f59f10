"""A code waiting in the lane is sealed: only the pepper opens it, only for its own send."""

from __future__ import annotations

from otpservice.sealing import CodeSealer
from otpservice.settings import Secret

PEPPER = Secret(b"p" * 32)


def test_a_sealed_code_opens_with_the_same_pepper_and_reference() -> None:
    sealer = CodeSealer(PEPPER)
    sealed = sealer.seal("123456", "abc")
    assert b"123456" not in sealed
    assert sealer.open(sealed, "abc") == "123456"


def test_two_seals_of_one_code_differ() -> None:
    sealer = CodeSealer(PEPPER)
    assert sealer.seal("123456", "abc") != sealer.seal("123456", "abc")


def test_a_seal_does_not_open_for_another_verification_or_pepper_or_when_altered() -> None:
    sealed = CodeSealer(PEPPER).seal("123456", "abc")
    assert CodeSealer(PEPPER).open(sealed, "abd") is None
    assert CodeSealer(Secret(b"q" * 32)).open(sealed, "abc") is None
    altered = sealed[:-1] + bytes([sealed[-1] ^ 1])
    assert CodeSealer(PEPPER).open(altered, "abc") is None
    assert CodeSealer(PEPPER).open(b"short", "abc") is None
