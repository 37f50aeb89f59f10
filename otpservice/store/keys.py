"""Every Redis key the service writes, in one place.

All keys of one phone number share the hash tag `{<number tag>}`: the verification record, its
delivery events, the number's index entry and its send and failed-check limits. So every
multi-key script touches one hash slot and runs unchanged on Redis Cluster. The tag is an HMAC of
the E.164 number under a key derived from the pepper: a key name never shows a phone number.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets

from otpservice.settings import Secret

PREFIX = "otp"
TAG_LEN = 16
RAND_LEN = 26
_ID_RE = re.compile(rf"^[a-z2-7]{{{TAG_LEN}}}[a-z2-7]{{{RAND_LEN}}}$")


def _b32(data: bytes) -> str:
    return base64.b32encode(data).decode().rstrip("=").lower()


class VerificationKeys:
    """The keys of one verification, parsed from or made for its id."""

    __slots__ = ("events", "number_index", "rand", "record", "reports_seen", "tag", "tenant")

    def __init__(self, tag: str, rand: str, tenant: str) -> None:
        self.tag = tag
        self.rand = rand
        self.tenant = tenant
        self.record = f"{PREFIX}:{{{tag}}}:v:{rand}"
        self.events = f"{PREFIX}:{{{tag}}}:e:{rand}"
        self.reports_seen = f"{PREFIX}:{{{tag}}}:r:{rand}"
        self.number_index = f"{PREFIX}:{{{tag}}}:n:{tenant}"

    @property
    def id(self) -> str:
        return self.tag + self.rand


class NumberKeys:
    """The keys of one phone number within one tenant."""

    __slots__ = (
        "daily_sends",
        "events_prefix",
        "failed_checks",
        "hourly_sends",
        "index",
        "record_prefix",
        "tag",
    )

    def __init__(self, tag: str, tenant: str) -> None:
        self.tag = tag
        base = f"{PREFIX}:{{{tag}}}"
        self.index = f"{base}:n:{tenant}"
        self.hourly_sends = f"{base}:l:{tenant}:sh"
        self.daily_sends = f"{base}:l:{tenant}:sd"
        self.failed_checks = f"{base}:l:{tenant}:fc"
        self.record_prefix = f"{base}:v:"
        self.events_prefix = f"{base}:e:"

    def verification(self, rand: str, tenant: str) -> VerificationKeys:
        return VerificationKeys(self.tag, rand, tenant)


class Keyspace:
    """Makes key names; holds the HMAC key that turns numbers and IPs into tags."""

    def __init__(self, pepper: Secret) -> None:
        self._tag_key = hmac.digest(pepper.reveal(), b"otpservice/key-tags/v1", "sha256")

    def _tag(self, kind: bytes, value: str) -> str:
        digest = hmac.digest(self._tag_key, kind + value.encode(), "sha256")
        return _b32(digest)[:TAG_LEN]

    def number(self, e164: str, tenant: str) -> NumberKeys:
        return NumberKeys(self._tag(b"n:", e164), tenant)

    def new_rand(self) -> str:
        return _b32(secrets.token_bytes(16))[:RAND_LEN]

    def verification(self, verification_id: str, tenant: str) -> VerificationKeys | None:
        """Keys for an id a client sent, or None when it cannot be one of ours."""
        if not _ID_RE.match(verification_id):
            return None
        return VerificationKeys(verification_id[:TAG_LEN], verification_id[TAG_LEN:], tenant)

    def failed_checks_for(self, keys: VerificationKeys) -> str:
        return f"{PREFIX}:{{{keys.tag}}}:l:{keys.tenant}:fc"

    def ip_bucket(self, tenant: str, ip: str) -> str:
        return f"{PREFIX}:{{i{self._tag(b'i:', ip)}}}:l:{tenant}:ip"

    def idempotency(self, tenant: str, key: str) -> str:
        digest = hashlib.sha256(f"{tenant}\0{key}".encode()).hexdigest()[:32]
        return f"{PREFIX}:{{k{digest}}}:idem"

    def provider_message(self, provider: str, message_id: str) -> str:
        digest = hashlib.sha256(f"{provider}\0{message_id}".encode()).hexdigest()[:32]
        return f"{PREFIX}:{{m{digest}}}:pm"
