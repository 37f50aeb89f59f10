"""argon2id keyed hashing and API-key resolution."""

from __future__ import annotations

import pytest

from otpservice.api.auth import api_key_from_headers, tenant_for_key
from otpservice.errors import Unauthorized
from otpservice.hashing import CodeHasher, matching_digest
from otpservice.settings import ARGON2_PROFILES, Secret, Tenant, api_key_digest

CHEAP = ARGON2_PROFILES["test"]
SALT = b"s" * 16


def test_the_same_code_salt_and_pepper_give_the_same_digest() -> None:
    hasher = CodeHasher(CHEAP, Secret(b"p" * 32), threads=1)
    assert hasher.hash_code("123456", SALT) == hasher.hash_code("123456", SALT)
    assert len(hasher.hash_code("123456", SALT)) == 32


def test_the_digest_depends_on_the_pepper_so_a_dump_alone_is_useless() -> None:
    one = CodeHasher(CHEAP, Secret(b"a" * 32), threads=1).hash_code("123456", SALT)
    two = CodeHasher(CHEAP, Secret(b"b" * 32), threads=1).hash_code("123456", SALT)
    assert one != two


def test_the_digest_depends_on_code_and_salt() -> None:
    hasher = CodeHasher(CHEAP, Secret(b"p" * 32), threads=1)
    base = hasher.hash_code("123456", SALT)
    assert hasher.hash_code("123457", SALT) != base
    assert hasher.hash_code("123456", b"t" * 16) != base


def test_the_digest_is_not_the_code() -> None:
    hasher = CodeHasher(CHEAP, Secret(b"p" * 32), threads=1)
    digest = hasher.hash_code("123456", SALT)
    assert b"123456" not in digest


async def test_hashing_runs_in_the_pool() -> None:
    hasher = CodeHasher(CHEAP, Secret(b"p" * 32), threads=2)
    try:
        assert await hasher.hash_code_async("123456", SALT) == hasher.hash_code("123456", SALT)
    finally:
        hasher.shutdown()


def test_one_digest_is_matched_against_several_stored_ones() -> None:
    assert matching_digest(b"b" * 32, [b"a" * 32, b"b" * 32]) == 1
    assert matching_digest(b"a" * 32, [b"a" * 32, b"a" * 32]) == 0
    assert matching_digest(b"c" * 32, [b"a" * 32, b"b" * 32]) == -1


def _tenant(name: str, key: str) -> Tenant:
    return Tenant(name=name, api_key_digests=(api_key_digest(key),), sender="x", app_name="x")


def test_bearer_and_x_api_key_both_carry_the_key() -> None:
    assert api_key_from_headers("Bearer abc", None) == "abc"
    assert api_key_from_headers("bearer  abc ", None) == "abc"
    assert api_key_from_headers(None, "abc") == "abc"


@pytest.mark.parametrize(("auth", "x_key"), [(None, None), ("Basic abc", None), ("Bearer ", "")])
def test_a_missing_key_is_unauthorized(auth: str | None, x_key: str | None) -> None:
    with pytest.raises(Unauthorized):
        api_key_from_headers(auth, x_key)


def test_keys_resolve_to_their_tenant_and_wrong_keys_are_refused() -> None:
    tenants = [_tenant("a", "key-a"), _tenant("b", "key-b")]
    assert tenant_for_key("key-b", tenants).name == "b"
    with pytest.raises(Unauthorized):
        tenant_for_key("key-c", tenants)
    with pytest.raises(Unauthorized):
        tenant_for_key("k" * 1000, tenants)
