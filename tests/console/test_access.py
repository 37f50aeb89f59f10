"""Sign-in and session rules on in-memory stores (no I/O), the settings that configure the
console, the hash-password command, and the console's place in the layers."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import pytest
from argon2 import PasswordHasher, extract_parameters

from otpservice.__main__ import hash_password_command
from otpservice.console.passwords import PROFILE, PasswordVerifier
from otpservice.errors import ConfigError
from otpservice.settings import Secret, SupportUser, load_settings
from otpservice.usecases.console_access import (
    ConsoleAccess,
    SessionRecord,
    SignInBusy,
    SignInLimited,
    SignInRefused,
)
from tests.console.support import cheap_hash, console_toml
from tests.unit.test_architecture import PACKAGE, imports_of

PEPPER = Secret(b"p" * 32)


class MemorySessions:
    def __init__(self) -> None:
        self.now = 0
        self.stored: dict[str, tuple[str, str, int, int, int]] = {}

    async def open(
        self, digest: str, *, user: str, fingerprint: str, idle_ms: int, absolute_ms: int
    ) -> None:
        self.stored[digest] = (
            user,
            fingerprint,
            self.now,
            self.now + idle_ms,
            self.now + absolute_ms,
        )

    async def touch(self, digest: str, *, idle_ms: int) -> SessionRecord | None:
        found = self.stored.get(digest)
        if found is None or self.now >= min(found[3], found[4]):
            self.stored.pop(digest, None)
            return None
        user, fingerprint, created, _, ends = found
        self.stored[digest] = (user, fingerprint, created, self.now + idle_ms, ends)
        return SessionRecord(
            user=user, fingerprint=fingerprint, created_ms=created, now_ms=self.now
        )

    async def close(self, digest: str) -> None:
        self.stored.pop(digest, None)


class MemoryLimiter:
    def __init__(self) -> None:
        self.counts: dict[str, int] = {}

    async def take(
        self, user_digest: str, ip_digest: str, *, user_limit: int, ip_limit: int, window_ms: int
    ) -> int:
        if (
            self.counts.get(user_digest, 0) >= user_limit
            or self.counts.get(ip_digest, 0) >= ip_limit
        ):
            return window_ms
        for key in (user_digest, ip_digest):
            self.counts[key] = self.counts.get(key, 0) + 1
        return 0

    async def succeeded(self, user_digest: str, ip_digest: str) -> None:
        self.counts.pop(user_digest, None)
        self.counts[ip_digest] = max(0, self.counts.get(ip_digest, 0) - 1)


class CountingPasswords:
    def __init__(self) -> None:
        self.checked: list[str | None] = []

    async def verify(self, password_hash: str | None, password: str) -> bool:
        self.checked.append(password_hash)
        return password_hash is not None and PasswordHasher().verify(password_hash, password)


ALICE = SupportUser(
    name="alice", password_hash=Secret(cheap_hash("alice-password-1").encode()), tenants=("acme",)
)


def access(
    users: tuple[SupportUser, ...] = (ALICE,),
) -> tuple[ConsoleAccess, MemorySessions, CountingPasswords]:
    sessions, passwords = MemorySessions(), CountingPasswords()
    made = ConsoleAccess(
        users, PEPPER, sessions=sessions, limiter=MemoryLimiter(), passwords=passwords
    )
    return made, sessions, passwords


async def test_a_right_password_opens_a_session_stored_under_a_digest() -> None:
    made, sessions, _ = access()
    user, session_id = await made.sign_in("alice", "alice-password-1", "192.0.2.1")
    assert user is ALICE
    assert session_id not in sessions.stored
    assert list(sessions.stored) == [made.session_digest(session_id)]
    assert await made.user_for(session_id) is ALICE
    await made.sign_out(session_id)
    assert await made.user_for(session_id) is None


async def test_an_unknown_name_is_checked_against_a_dummy_hash_all_the_same() -> None:
    made, _, passwords = access()
    with pytest.raises(SignInRefused):
        await made.sign_in("mallory", "alice-password-1", "192.0.2.1")
    assert passwords.checked == [None]  # the verifier hashes a dummy for None (below)


async def test_a_session_ends_after_idling_and_at_its_absolute_end() -> None:
    made, sessions, _ = access()
    _, session_id = await made.sign_in("alice", "alice-password-1", "192.0.2.1")
    for _ in range(30):  # active every 25 minutes: kept alive
        sessions.now += 25 * 60_000
        if sessions.now >= 12 * 3_600_000:
            break
        assert await made.user_for(session_id) is ALICE
    sessions.now = 12 * 3_600_000
    assert await made.user_for(session_id) is None
    _, other = await made.sign_in("alice", "alice-password-1", "192.0.2.1")
    sessions.now += 31 * 60_000
    assert await made.user_for(other) is None


async def test_sign_ins_are_limited_per_name() -> None:
    made, _, _ = access()
    for _ in range(5):
        with pytest.raises(SignInRefused):
            await made.sign_in("Alice ", "wrong", "192.0.2.1")
    with pytest.raises(SignInLimited) as limited:
        await made.sign_in("alice", "alice-password-1", "198.51.100.7")
    assert limited.value.minutes == 15


async def test_a_session_id_that_cannot_be_ours_is_not_even_looked_up() -> None:
    made, sessions, _ = access()
    for bad in ("", "x", "é" * 43, "a" * 44, None):
        assert await made.user_for(bad) is None
    assert sessions.stored == {}


async def test_a_removed_user_or_a_new_password_ends_the_session() -> None:
    made, sessions, _ = access()
    _, session_id = await made.sign_in("alice", "alice-password-1", "192.0.2.1")
    rotated = SupportUser(
        name="alice",
        password_hash=Secret(cheap_hash("new-password-12").encode()),
        tenants=("acme",),
    )
    later = ConsoleAccess(
        (rotated,),
        PEPPER,
        sessions=sessions,
        limiter=MemoryLimiter(),
        passwords=CountingPasswords(),
    )
    assert await later.user_for(session_id) is None


async def test_the_verifier_refuses_an_unknown_user_at_the_cost_of_a_known_one() -> None:
    known = cheap_hash("alice-password-1")
    verifier = PasswordVerifier([known])
    try:
        assert await verifier.verify(known, "alice-password-1") is True
        assert await verifier.verify(known, "wrong") is False
        assert await verifier.verify(None, "alice-password-1") is False
        assert verifier._dummy is not None
        assert extract_parameters(verifier._dummy.result()) == extract_parameters(known)
    finally:
        verifier.shutdown()


async def test_the_verifier_turns_away_checks_beyond_its_queue() -> None:
    verifier = PasswordVerifier([], max_pending=0)
    try:
        with pytest.raises(SignInBusy):
            await verifier.verify(None, "x")
    finally:
        verifier.shutdown()


def test_hash_password_prints_a_strong_argon2id_hash(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO("correct horse battery\n"))
    out = io.StringIO()
    monkeypatch.setattr(sys, "stdout", out)
    assert hash_password_command(from_stdin=True) == 0
    phc = out.getvalue().strip()
    assert phc.startswith("$argon2id$")
    parameters = extract_parameters(phc)
    assert (parameters.memory_cost, parameters.time_cost) == (
        PROFILE.memory_cost,
        PROFILE.time_cost,
    )
    assert PasswordHasher().verify(phc, "correct horse battery")


def test_hash_password_refuses_a_short_password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO("short\n"))
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    assert hash_password_command(from_stdin=True) == 2


def settings_with(tmp_path: Path, toml: str, **env: str) -> object:
    path = tmp_path / "c.toml"
    path.write_text(toml)
    return load_settings({"OTP_CONFIG_FILE": str(path), **env})


def test_the_console_is_on_in_development_and_off_in_production_by_default(tmp_path: Path) -> None:
    assert load_settings({}).console is True
    assert load_settings({"OTP_CONSOLE": "off"}).console is False
    production = {
        "OTP_ENV": "production", "OTP_REDIS_URL": "redis://r:6379/0", "OTP_PEPPER": "x" * 32,
        "OTP_MESSAGEFLOW_PRIORITY_BASE_URL": "https://mf", "OTP_MESSAGEFLOW_PRIORITY_API_KEY": "k",
        "OTP_MESSAGEFLOW_PRIORITY_APP_KEY": "a", "OTP_MESSAGEFLOW_WEBHOOK_SECRET": "s",
    }  # fmt: skip
    path = tmp_path / "c.toml"
    path.write_text(console_toml())
    settings = load_settings({**production, "OTP_CONFIG_FILE": str(path)})
    assert settings.console is False
    assert [u.name for u in settings.support_users] == ["alice", "bob", "carol"]
    assert load_settings({**production, "OTP_CONFIG_FILE": str(path), "OTP_CONSOLE": "on"}).console


@pytest.mark.parametrize(
    ("user", "problem"),
    [
        ('name = "x"\npassword_hash = "plain"\ntenants = ["acme"]', "argon2id"),
        (
            (
                'name = "x"\npassword_hash = "$argon2i$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$aGFzaA"\n'
                'tenants = ["acme"]'
            ),
            "argon2id",
        ),
        ('name = "x"\npassword_hash = "HASH"\ntenants = ["nobody"]', "unknown"),
        ('name = "x"\npassword_hash = "HASH"\ntenants = []', "tenants"),
        ('name = " x"\npassword_hash = "HASH"\ntenants = ["acme"]', "printable"),
        ('name = "x"\npassword_hash = "HASH"\ntenants = ["acme"]\nrole = "admin"', "role"),
    ],
)
def test_a_bad_support_user_is_named_in_the_configuration_error(
    tmp_path: Path, user: str, problem: str
) -> None:
    toml = (
        console_toml() + "\n[[support_users]]\n" + user.replace("HASH", cheap_hash("p" * 12)) + "\n"
    )
    with pytest.raises(ConfigError) as error:
        settings_with(tmp_path, toml)
    assert problem in str(error.value)
    assert "support_users[3]" in str(error.value)


def test_console_modules_but_the_wiring_reach_no_store_or_redis() -> None:
    for path in sorted((PACKAGE / "console").rglob("*.py")):
        if path.name == "wiring.py":
            continue
        wrong = {
            n
            for n in imports_of(path)
            if n.split(".")[0] == "redis" or n.startswith("otpservice.store")
        }
        assert not wrong, (path.name, wrong)
