"""Every Redis key name the service writes, in one place (the layout is drawn in schema.py).

Keys are grouped into SHARDS shards, each with its own hash tag `{sNN}`: everything of one
number (its latest verification, the earlier ones still kept, their delivery events, its send
and failed-check limits) and the priority lane's stream of that shard share one hash slot. So
every script touches one slot and runs unchanged on Redis Cluster, and storing a code and
queueing its SMS is one atomic script. The shard comes from the number's tag (ids.py).

Every name here is made by the caller and handed to the script in KEYS: a script never builds
a key name, from its arguments or from what it reads.

The prefix carries the layout's version, and the number of shards is part of the layout:
changing either strands every key already written.
"""

from __future__ import annotations

import hashlib

from otpservice.ids import VerificationRef

PREFIX = "otp2"
SHARDS = 64
_B32 = "abcdefghijklmnopqrstuvwxyz234567"


def shard_of(tag: str) -> int:
    """The shard of a number's tag: its first ten bits, modulo the shard count."""
    return (_B32.index(tag[0]) * 32 + _B32.index(tag[1])) % SHARDS


def shard_base(shard: int) -> str:
    return f"{PREFIX}:{{s{shard:02d}}}"


def lane_stream(shard: int) -> str:
    """The priority lane's stream of one shard."""
    return f"{shard_base(shard)}:lane"


class NumberKeys:
    """The keys of one number (of one tenant: the tag is per tenant)."""

    __slots__ = ("current", "failed_checks", "lane", "send_buckets", "shard", "tag")

    def __init__(self, tag: str) -> None:
        self.tag = tag
        self.shard = shard_of(tag)
        base = shard_base(self.shard)
        self.current = f"{base}:c:{tag}"
        """Hash: the number's latest verification (open, or finished and still kept)."""
        self.send_buckets = f"{base}:b:{tag}"
        """String: the number's hourly and daily send buckets."""
        self.failed_checks = f"{base}:f:{tag}"
        """Counter: failed checks across verifications, in the policy's window."""
        self.lane = lane_stream(self.shard)


class VerificationKeys:
    """The keys of one verification."""

    __slots__ = ("archived", "current", "events", "lane", "ref", "reports_seen", "shard")

    def __init__(self, ref: VerificationRef) -> None:
        number = NumberKeys(ref.tag)
        base = shard_base(number.shard)
        self.ref = ref
        self.shard = number.shard
        self.current = number.current
        self.archived = f"{base}:v:{ref.text}"
        """Hash: this verification once a newer one of its number took `current` (RENAME)."""
        self.events = f"{base}:e:{ref.text}"
        """String: its delivery events, one JSON object per line."""
        self.reports_seen = f"{base}:r:{ref.text}"
        """Set: fingerprints of the delivery reports already recorded."""
        self.lane = number.lane


def ip_bucket(ip_tag: str) -> str:
    """The per-IP start bucket (the tag is per tenant and IP): a slot of its own."""
    return f"{PREFIX}:{{i{ip_tag}}}:ip"


def idempotency(tenant: str, key: str) -> str:
    digest = hashlib.sha256(f"{tenant}\0{key}".encode()).hexdigest()[:32]
    return f"{PREFIX}:{{k{digest}}}:idem"


def provider_message(provider: str, message_id: str) -> str:
    """A provider's own message id -> our message reference (Flowstates matches reports so)."""
    digest = hashlib.sha256(f"{provider}\0{message_id}".encode()).hexdigest()[:32]
    return f"{PREFIX}:{{m{digest}}}:pm"


_DAY_MS = 86_400_000
_HOUR_MS = 3_600_000
FRAUD_DAYS = 15
"""Today and the 14 days before: the guard's best verified day looks that far back."""
FRAUD_HOURS = 24


class FraudKeys:
    """The fraud guard's keys of one tenant, all in one slot: its decisions read counters of
    every country, prefix and IP of the tenant at once. Counters are hashes per day and per
    hour (UTC), named by their index since the epoch."""

    __slots__ = ("base", "blocks", "safe")

    def __init__(self, tenant: str) -> None:
        self.base = f"{PREFIX}:{{fg:{tenant}}}"
        self.blocks = f"{self.base}:blocks"
        self.safe = f"{self.base}:safe"

    def day(self, now_ms: int, back: int = 0) -> str:
        return f"{self.base}:d:{now_ms // _DAY_MS - back}"

    def hour(self, now_ms: int, back: int = 0) -> str:
        return f"{self.base}:h:{now_ms // _HOUR_MS - back}"

    def for_check(self, now_ms: int) -> list[str]:
        """blocks, safe, the 15 day keys (today first), the 24 hour keys (this hour first)."""
        return [
            self.blocks,
            self.safe,
            *(self.day(now_ms, back) for back in range(FRAUD_DAYS)),
            *(self.hour(now_ms, back) for back in range(FRAUD_HOURS)),
        ]


def day_end_ms(now_ms: int) -> int:
    return (now_ms // _DAY_MS + 1) * _DAY_MS


def hour_end_ms(now_ms: int) -> int:
    return (now_ms // _HOUR_MS + 1) * _HOUR_MS
