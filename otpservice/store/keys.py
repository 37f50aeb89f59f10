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
from collections.abc import Iterator

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


class OutboxKeys:
    """A slot's outbox of tenant events (events.py delivers them): `due` (sorted set: event id
    -> when to try it next; a claim moves it a lease ahead), `created` (sorted set: event id ->
    when it happened, for the oldest one's age) and `payloads` (hash: event id -> JSON). Every
    script that changes a verification queues its event in its shard's outbox, in the same
    atomic step; the fraud guard queues `fraud.blocked` in the tenant's slot."""

    __slots__ = ("created", "due", "payloads")

    def __init__(self, base: str) -> None:
        self.due = f"{base}:wq"
        self.created = f"{base}:wc"
        self.payloads = f"{base}:wd"

    def __iter__(self) -> Iterator[str]:
        return iter((self.due, self.created, self.payloads))


def shard_outbox(shard: int) -> OutboxKeys:
    return OutboxKeys(shard_base(shard))


def expiry_schedule(shard: int) -> str:
    """Sorted set: the shard's pending verifications of tenants with event webhooks -> their
    expiry, so `verification.expired` goes out within a poll of it (no state changes then)."""
    return f"{shard_base(shard)}:xs"


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

    __slots__ = ("base", "blocks", "outbox", "safe")

    def __init__(self, tenant: str) -> None:
        self.base = f"{PREFIX}:{{fg:{tenant}}}"
        self.blocks = f"{self.base}:blocks"
        self.safe = f"{self.base}:safe"
        self.outbox = OutboxKeys(self.base)
        """Where its `fraud.blocked` events wait."""

    def day(self, now_ms: int, back: int = 0) -> str:
        return f"{self.base}:d:{now_ms // _DAY_MS - back}"

    def hour(self, now_ms: int, back: int = 0) -> str:
        return f"{self.base}:h:{now_ms // _HOUR_MS - back}"

    def for_check(self, now_ms: int) -> list[str]:
        """blocks, safe, the 15 day keys (today first), the 24 hour keys (this hour first),
        then the outbox (due, created, payloads)."""
        return [
            self.blocks,
            self.safe,
            *(self.day(now_ms, back) for back in range(FRAUD_DAYS)),
            *(self.hour(now_ms, back) for back in range(FRAUD_HOURS)),
            *self.outbox,
        ]


# --- support console ------------------------------------------------------------------------------

STATS_SLOT_MS = 600_000
"""The statistics' fine period: ten minutes (the console's last hour reads seven of them)."""
STATS_HOUR_MS = _HOUR_MS
STATS_SLOT_TTL_MS = 70 * 60_000
STATS_HOUR_TTL_MS = _DAY_MS
"""How long each statistics hash lives after its last new field (_prelude.lua's count_stat
sets the same figures; tests/console checks they agree): the oldest period the console reads
(six slots, 23 hours before the current one) is still there, and no key outlives a day."""
STATS_SLOTS_READ = 7
STATS_HOURS_READ = 24


def stats_slot(shard: int, slot: int) -> str:
    """Hash: one shard's support statistics of one ten-minute period (index since the epoch),
    fields `<tenant>|<counter>|<detail>`. In the number's slot: the scripts that count a send,
    a delivery report or an approval touch it in the same step, at no extra round trip."""
    return f"{shard_base(shard)}:st:m:{slot}"


def stats_hour(shard: int, hour: int) -> str:
    """Hash: the same counters per hour (index since the epoch), for the console's last day."""
    return f"{shard_base(shard)}:st:h:{hour}"


def stats_keys(shard: int, now_ms: int) -> list[str]:
    """The statistics hashes a script counts into now: the ten-minute one, then the hour's.
    The period comes from this process's clock: near a boundary a count may land in the
    neighbouring period, which the console's figures can bear."""
    return [stats_slot(shard, now_ms // STATS_SLOT_MS), stats_hour(shard, now_ms // STATS_HOUR_MS)]


CONSOLE_BASE = f"{PREFIX}:{{console}}"
"""The support console's own keys share one slot: its traffic is a few people's clicks, and
the sign-in limit's script touches a user's and an IP's counter at once."""


def console_session(digest: str) -> str:
    """Hash: one console session, named by a digest of its id (a dump shows no usable id)."""
    return f"{CONSOLE_BASE}:s:{digest}"


def console_login_user(digest: str) -> str:
    """Counter: sign-in attempts for one user name (a digest: unknown names count too)."""
    return f"{CONSOLE_BASE}:lu:{digest}"


def console_login_ip(digest: str) -> str:
    """Counter: sign-in attempts from one client IP (a digest)."""
    return f"{CONSOLE_BASE}:li:{digest}"


def console_audit(tenant: str) -> str:
    """Stream: the console's lookups of one tenant's verifications (30 days)."""
    return f"{CONSOLE_BASE}:audit:{tenant}"


def day_end_ms(now_ms: int) -> int:
    return (now_ms // _DAY_MS + 1) * _DAY_MS


def hour_end_ms(now_ms: int) -> int:
    return (now_ms // _HOUR_MS + 1) * _HOUR_MS
