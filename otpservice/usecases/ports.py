"""What the use cases need from storage: small repository Protocols and the records they carry.

store/ implements them on Redis (one Lua script per atomic step); memory.py implements them in
memory for unit tests. Both are held to the same behaviour by tests/integration/test_store_contract.
Times are the store's clock (Redis' TIME), in milliseconds since the epoch.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Literal, Protocol

import msgspec

from otpservice.domain.fraud import Budget, CapAction, FraudMode
from otpservice.ids import VerificationRef
from otpservice.lane import SendJob

# --- records ------------------------------------------------------------------------------------


class DeliveryEvent(msgspec.Struct, frozen=True, kw_only=True):
    """One step of one SMS: queued, submitted, a provider's report, or the service's `failed`."""

    status: str
    at_ms: int
    send: int
    provider: str | None = None
    provider_status: str | None = None
    error_code: str | None = None
    detail: str | None = None
    """Why, in words: the fraud guard's figures on a `flagged` event."""


class VerificationRecord(msgspec.Struct, frozen=True, kw_only=True):
    """A verification as stored (never its code, salt or digests)."""

    ref: VerificationRef
    tenant: str
    to: str
    region: str
    status: Literal["pending", "approved", "failed", "canceled"]
    """As stored: a pending verification past its expiry is shown `expired` (views.py)."""
    created_ms: int
    expires_ms: int
    attempts_left: int
    sends: int
    max_sends: int
    next_resend_ms: int
    delivery_status: str
    delivery_updated_ms: int
    submitted_ms: int | None = None
    finished_ms: int | None = None
    client_ref: str | None = None
    locale: str = ""
    app_hash: str | None = None
    provider: str = ""
    fraud_ip: str = ""
    """The end user's IP tag the fraud guard counted the first send under ('' if none)."""


class Snapshot(msgspec.Struct, frozen=True, kw_only=True):
    record: VerificationRecord
    events: tuple[DeliveryEvent, ...]
    now_ms: int


# --- sending ------------------------------------------------------------------------------------


class SendLimits(msgspec.Struct, frozen=True, kw_only=True):
    sends_per_hour: int
    sends_per_day: int


class IpLimit(msgspec.Struct, frozen=True, kw_only=True):
    """The per-IP start bucket, taken in the same round trip as the send pre-check."""

    ip_tag: str
    limit: int
    period_ms: int


class FraudQuery(msgspec.Struct, frozen=True, kw_only=True):
    """What the fraud guard decides on for one send (domain/fraud.py has the rules)."""

    tenant: str
    now_ms: int
    mode: FraudMode
    country: str
    prefix: str
    ip: str
    """The end user's IP as a tag (ids.py), '' when it is not known."""
    e164: str
    safe: bool
    """On the tenant's configured safe list."""
    country_budget: Budget
    prefix_budget: Budget
    ip_budget: Budget
    ip_countries: int
    cooloff_ms: int
    cooloff_max_ms: int
    country_cap: int
    """0 for none."""
    cap_action: CapAction


class FraudVerdict(msgspec.Struct, frozen=True, kw_only=True):
    verdict: Literal["allow", "refuse", "flag"]
    rule: str = ""
    """country_budget, country_prefix, prefix_budget, ip_budget, ip_countries or country_cap."""
    figure: int = 0
    """Unverified sends (with this one), sends this hour, or countries today."""
    limit: int = 0
    window: Literal["hour", "day", ""] = ""
    until_ms: int = 0
    """When the block (or the budget's window) ends."""
    level: int = 0
    """How many times the block was renewed within a day (the cool-off doubles each time)."""


class SendPrecheck(msgspec.Struct, frozen=True, kw_only=True):
    """What a send may do, read before any hashing. `rand` is the number's latest verification
    ('' for none) and `open` whether it is still open (the send is then a resend on it)."""

    verdict: Literal["new", "resend", "not_found", "max_sends", "too_soon", "hour", "day"]
    wait_ms: int = 0
    rand: str = ""
    open: bool = False
    salt: bytes = b""
    ip_wait_ms: int = 0
    """Milliseconds until the IP bucket has a token; 0 when one was taken."""
    fraud: FraudVerdict | None = None
    """The fraud guard's decision, taken in the same round trip (None: not asked)."""


class NewCode(msgspec.Struct, frozen=True, kw_only=True):
    salt: bytes
    digest: bytes
    """argon2id of the code under the salt and the pepper."""
    sealed: bytes
    """The code sealed for the lane (sealing.py): a code is never stored in clear."""


class SendRequest(msgspec.Struct, frozen=True, kw_only=True):
    """Store a new code: on the number's open verification, or on a new one."""

    tenant: str
    tag: str
    by_id: bool
    """A resend of one verification (it must be open); else a start for the number."""
    seen_rand: str
    """The number's latest verification as the pre-check saw it; another one now is a conflict."""
    seen_open: bool
    new_rand: str
    to: str
    region: str
    locale: str
    app_hash: str
    client_ref: str
    provider: str
    limits: SendLimits
    ttl_ms: int
    max_attempts: int
    max_sends: int
    cooldowns_ms: tuple[int, ...]
    """The resend cooldown after the 1st, 2nd, ... send (domain/policy.py)."""
    accept_previous: bool
    retention_ms: int
    fraud_prefix: str = ""
    """The prefix and IP tag the fraud guard counted this send under ('' when it did not):
    an approval is counted under them."""
    fraud_ip: str = ""
    flagged: tuple[tuple[str, str], ...] = ()
    """(rule, detail) of the fraud guard's flags in monitor mode: kept in the events."""


class SendCommitted(msgspec.Struct, frozen=True, kw_only=True):
    verdict: Literal["ok", "conflict", "not_found", "max_sends", "too_soon", "hour", "day"]
    wait_ms: int = 0
    created: bool = False
    now_ms: int = 0
    record: VerificationRecord | None = None
    """The verification after the send (verdict ok)."""
    queued: DeliveryEvent | None = None
    lane_shard: int = 0
    lane_entry: str = ""
    """The send's entry in its shard's lane, claimed by this process."""


class CodeHashing(Protocol):
    def admit(self, operation: str) -> AbstractContextManager[None]:
        """A place in the hashing queue for one request, or Overloaded (503) at once."""
        ...

    async def hash_code_async(self, code: str, salt: bytes) -> bytes:
        """argon2id of `code` under `salt` and the pepper, off the event loop."""
        ...


class SendQueue(Protocol):
    def enqueue(self, job: SendJob) -> None:
        """Hand a stored send to the lane, which submits it."""
        ...


class SendRepository(Protocol):
    async def send_precheck(
        self,
        *,
        tenant: str,
        tag: str,
        rand: str | None,
        limits: SendLimits,
        ip: IpLimit | None,
        fraud: FraudQuery | None = None,
    ) -> SendPrecheck:
        """`rand`: a resend of that verification; None: a start for the number."""
        ...

    async def send_commit(self, request: SendRequest, code: NewCode) -> SendCommitted: ...


# --- checking -----------------------------------------------------------------------------------


class CheckBegun(msgspec.Struct, frozen=True, kw_only=True):
    """An attempt taken (verdict ok), with what the code must be hashed and compared with."""

    verdict: Literal["ok", "not_found", "rate_limited"]
    wait_ms: int = 0
    rand: str = ""
    salt: bytes = b""
    digests: tuple[bytes, ...] = ()
    """The current code's digest, then the previous one's when the tenant accepts it."""
    sends: int = 0


class CheckFinished(msgspec.Struct, frozen=True, kw_only=True):
    verdict: Literal["approved", "pending", "failed", "not_found"]
    attempts_left: int = 0
    created_ms: int = 0
    region: str = ""
    fraud_prefix: str = ""
    fraud_ip: str = ""


class CheckRepository(Protocol):
    async def check_begin(
        self,
        *,
        tenant: str,
        tag: str,
        rand: str | None,
        failed_limit: int,
        failed_window_ms: int,
    ) -> CheckBegun:
        """`rand`: check that verification; None: the number's open one."""
        ...

    async def check_finish(self, ref: VerificationRef, *, matched_send: int) -> CheckFinished:
        """`matched_send`: the send whose code matched, 0 for a wrong code."""
        ...


# --- managing -----------------------------------------------------------------------------------


class VerificationReader(Protocol):
    async def read(self, ref: VerificationRef, *, tenant: str) -> Snapshot | None: ...

    async def cancel(self, ref: VerificationRef, *, tenant: str) -> bool: ...


# --- deliveries ---------------------------------------------------------------------------------


class DeliveryUpdate(msgspec.Struct, frozen=True, kw_only=True):
    verdict: Literal["unmatched", "duplicate", "recorded"]
    previous: str = ""
    current: str = ""
    submitted_ms: int | None = None
    region: str = ""
    now_ms: int = 0


class DeliveryRepository(Protocol):
    async def record_delivery(
        self,
        ref: VerificationRef,
        event: DeliveryEvent,
        *,
        lifts_cooldown: bool,
        retention_ms: int,
        lane_entry: str | None = None,
    ) -> DeliveryUpdate:
        """Record one event of one send (`event.at_ms` is ignored: the store's clock stamps it);
        `lane_entry`: the send's lane entry, acknowledged in the same step."""
        ...

    async def remember_provider_message(
        self, provider: str, message_id: str, message_ref: str, ttl_ms: int
    ) -> None: ...

    async def lookup_provider_message(self, provider: str, message_id: str) -> str | None: ...


# --- fraud guard ------------------------------------------------------------------------------


class FraudBlock(msgspec.Struct, frozen=True, kw_only=True):
    key: str
    """`p:<prefix>` or `i:<IP tag>`."""
    rule: str
    figure: int
    limit: int
    window: str
    until_ms: int
    at_ms: int
    level: int
    country: str


class FraudRepository(Protocol):
    async def settle(
        self,
        *,
        tenant: str,
        approved: bool,
        country: str,
        prefix: str,
        ip: str,
        sends: int,
        now_ms: int,
    ) -> None:
        """Count `sends` approved sends (one verification's), lifting the blocks of its prefix
        and IP (it may land a moment later: store/fraud.py batches approvals), or take back a
        send that did not happen (at once)."""
        ...

    async def blocks(self, tenant: str, now_ms: int) -> list[FraudBlock]: ...

    async def lift(self, tenant: str, key: str, now_ms: int) -> bool:
        """End a block in force now, and forgive its scope's unverified sends so far."""
        ...

    async def safe_list(
        self, tenant: str, *, add: str | None = None, remove: str | None = None
    ) -> list[str]: ...


# --- idempotency --------------------------------------------------------------------------------


class IdempotencyState(msgspec.Struct, frozen=True, kw_only=True):
    verdict: Literal["reserved", "conflict", "in_progress", "replay"]
    response: bytes = b""


class IdempotencyRepository(Protocol):
    async def reserve(
        self, tenant: str, key: str, fingerprint: str, ttl_ms: int
    ) -> IdempotencyState: ...

    async def complete(self, tenant: str, key: str, fingerprint: str, response: bytes) -> None: ...

    async def release(self, tenant: str, key: str) -> None: ...
