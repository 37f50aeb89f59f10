"""What the console tests share: a configuration with support users, the sign-in dance,
delivery reports posted the way the sandbox provider posts them, and the HTML checks."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

from argon2 import PasswordHasher, profiles

from otpservice.ids import Identifiers, message_ref
from otpservice.settings import Secret
from tests.integration.conftest import tenant_toml

ACME_KEY = "console-key-acme"
OTHER_KEY = "console-key-other"
PASSWORDS = {
    "alice": "alice-password-1",  # acme
    "bob": "bob-password-123",  # other
    "carol": "carol-password-1",  # acme and other
}
SCOPES = {"alice": ["acme"], "bob": ["other"], "carol": ["acme", "other"]}
# Verification of the hash reads its cost from the hash: cheap hashes keep the tests fast.
_CHEAP = PasswordHasher.from_parameters(profiles.CHEAPEST)


def cheap_hash(password: str) -> str:
    return _CHEAP.hash(password)


def console_toml(*, strong: str | None = None) -> str:
    """Two tenants and three support users; `strong`: alice's hash, made by hash-password."""
    users = []
    for name, password in PASSWORDS.items():
        phc = strong if (strong and name == "alice") else _CHEAP.hash(password)
        tenants = ", ".join(f'"{t}"' for t in SCOPES[name])
        users.append(
            f'[[support_users]]\nname = "{name}"\npassword_hash = "{phc}"\ntenants = [{tenants}]\n'
        )
    return (
        tenant_toml("acme", ACME_KEY, {}) + tenant_toml("other", OTHER_KEY, {}) + "\n".join(users)
    )


def write_config(directory: Path) -> Path:
    path = directory / "console.toml"
    path.write_text(console_toml())
    return path


CSRF_FIELD = re.compile(r'name="_csrf_token" value="([0-9a-f]+)"')


def csrf_token(html: str) -> str:
    found = CSRF_FIELD.search(html)
    assert found, "the page has no CSRF field"
    return found.group(1)


def sandbox_report_ref(
    pepper: bytes, tenant: str, e164: str, verification_id: str, send: int
) -> str:
    """The externalId the service gave an SMS (ids.py): what the sandbox's reports carry."""
    ids = Identifiers(Secret(pepper))
    ref = ids.ref_for_id(verification_id, tenant)
    assert ref is not None
    assert ref.tag == ids.number_tag(tenant, e164)
    return message_ref(ref, send)


def digits_of(html: str) -> set[str]:
    """Every run of 4+ digits in a page: a code would be one."""
    return set(re.findall(r"(?<![0-9])[0-9]{4,}(?![0-9])", html))


def assert_no_code(html: str, codes: list[str]) -> None:
    for code in codes:
        assert code not in html, f"the code {code} appears in the page"


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def form(**fields: Any) -> dict[str, str]:
    return {k: str(v) for k, v in fields.items()}
