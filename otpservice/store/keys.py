"""Every Redis key the service writes, in one place.

Keys are grouped into LANE_SHARDS shards, each with its own hash tag `{sNN}`: a number's
verification records, their delivery events, the number's index entry, its send and failed-check
limits and the priority lane's stream of that shard all share one hash slot. So every multi-key
script touches one slot and runs unchanged on Redis Cluster, and storing a code and queueing its
SMS is one atomic script. The shard and the number's tag come from an HMAC of the E.164 number
under a key derived from the pepper: a key name never shows a phone number.

The number of shards is part of the key layout: changing it strands every key already written.
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
LANE_SHARDS = 64
_B32 = "abcdefghijklmnopqrstuvwxyz234567"
_ID_RE = re.compile(rf"^[a-z2-7]{{{TAG_LEN}}}[a-z2-7]{{{RAND_LEN}}}$")


def _b32(data: bytes) -> str:
    return base64.b32encode(data).decode().rstrip("=").lower()


def shard_of(tag: str) -> int:
    """The lane shard of a number's tag: its first ten bits, modulo the shard count."""
    return (_B32.index(tag[0]) * 32 + _B32.index(tag[1])) % LANE_SHARDS


def shard_base(shard: int) -> str:
    return f"{PREFIX}:{{s{shard:02d}}}"


def lane_stream(shard: int) -> str:
    """The priority lane's stream of one shard."""
    return f"{shard_base(shard)}:lane"


class NumberKeys:
    """The keys of one phone number within one tenant."""

    __slots__ = (
        "events_prefix",
        "failed_checks",
        "index",
        "lane",
        "record_prefix",
        "shard",
        "tag",
        "tenant",
    )

    def __init__(self, tag: str, tenant: str) -> None:
        self.tag = tag
        self.tenant = tenant
        self.shard = shard_of(tag)
        base = shard_base(self.shard)
        self.index = f"{base}:n:{tenant}:{tag}"
        """A hash: the number's open verification and its hourly and daily send buckets."""
        self.failed_checks = f"{base}:l:{tenant}:{tag}:fc"
        # A verification's keys are these prefixes followed by its rand.
        self.record_prefix = f"{base}:v:{tag}"
        self.events_prefix = f"{base}:e:{tag}"
        self.lane = lane_stream(self.shard)

    def verification(self, rand: str) -> VerificationKeys:
        return VerificationKeys(self.tag, rand, self.tenant)


class VerificationKeys:
    """The keys of one verification, parsed from or made for its id."""

    __slots__ = (
        "events",
        "lane",
        "number_index",
        "rand",
        "record",
        "reports_seen",
        "shard",
        "tag",
        "tenant",
    )

    def __init__(self, tag: str, rand: str, tenant: str) -> None:
        number = NumberKeys(tag, tenant)
        self.tag = tag
        self.rand = rand
        self.tenant = tenant
        self.shard = number.shard
        self.record = number.record_prefix + rand
        self.events = number.events_prefix + rand
        self.reports_seen = f"{shard_base(self.shard)}:r:{tag}{rand}"
        self.number_index = number.index
        self.lane = number.lane

    @property
    def id(self) -> str:
        return self.tag + self.rand


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

    def ip_bucket(self, tenant: str, ip: str) -> str:
        return f"{PREFIX}:{{i{self._tag(b'i:', ip)}}}:l:{tenant}:ip"

    def idempotency(self, tenant: str, key: str) -> str:
        digest = hashlib.sha256(f"{tenant}\0{key}".encode()).hexdigest()[:32]
        return f"{PREFIX}:{{k{digest}}}:idem"

    def provider_message(self, provider: str, message_id: str) -> str:
        digest = hashlib.sha256(f"{provider}\0{message_id}".encode()).hexdigest()[:32]
        return f"{PREFIX}:{{m{digest}}}:pm"
