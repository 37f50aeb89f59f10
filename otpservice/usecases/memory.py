"""In-memory repositories: the fake that ships beside the interface (ports.py), as httpx ships
MockTransport beside its transport Protocol. Use cases run on it in unit tests, with no Redis;
tests/integration/test_store_contract.py holds it and the Redis store to the same behaviour.

Single-threaded asyncio makes every method atomic, as a Lua script is. The clock is passed in
(milliseconds); data expires as the Redis keys would. The rules come from domain/ (cooldown
schedule, delivery status order), as the scripts get them; only the GCRA arithmetic of the
scripts' prelude is repeated here.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import msgspec

from otpservice.domain import delivery
from otpservice.ids import VerificationRef, message_ref
from otpservice.usecases.ports import (
    CheckBegun,
    CheckFinished,
    DeliveryEvent,
    DeliveryUpdate,
    FraudBlock,
    FraudQuery,
    FraudVerdict,
    IdempotencyState,
    IpLimit,
    NewCode,
    SendCommitted,
    SendLimits,
    SendPrecheck,
    SendRequest,
    Snapshot,
    VerificationRecord,
)

_HOUR_MS = 3_600_000
_DAY_MS = 86_400_000
_MAX_EVENTS = 50


def wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


def gcra(tat: float | None, limit: int, period_ms: int, now: int) -> tuple[int, float]:
    """(milliseconds to wait, 0 when allowed; the new theoretical arrival time to store)."""
    interval = period_ms / limit
    new_tat = max(tat if tat is not None else now, now) + interval
    wait = new_tat - period_ms - now
    return (math.ceil(wait), new_tat) if wait > 0 else (0, new_tat)


@dataclass
class _Record:
    rand: str
    tenant: str
    to: str
    region: str
    created_ms: int
    max_attempts: int
    max_sends: int
    salt: bytes
    accept_previous: bool
    client_ref: str
    provider: str
    locale: str
    app_hash: str
    fraud_prefix: str = ""
    fraud_ip: str = ""
    keep_until: int = 0
    status: str = "pending"
    attempts_left: int = 0
    wrong_checks: int = 0
    sends: int = 0
    expires_ms: int = 0
    next_resend_ms: int = 0
    digest: bytes = b""
    previous_digest: bytes = b""
    delivery_status: str = "queued"
    delivery_updated_ms: int = 0
    submitted_ms: int | None = None
    finished_ms: int | None = None
    events: list[DeliveryEvent] = field(default_factory=list)
    reports_seen: set[str] = field(default_factory=set)

    def is_open(self, tenant: str, now: int) -> bool:
        return self.tenant == tenant and self.status == "pending" and self.expires_ms > now

    def public(self, tag: str) -> VerificationRecord:
        return VerificationRecord(
            ref=VerificationRef(tag, self.rand),
            tenant=self.tenant,
            to=self.to,
            region=self.region,
            status=self.status,  # type: ignore[arg-type]
            created_ms=self.created_ms,
            expires_ms=self.expires_ms,
            attempts_left=self.attempts_left,
            sends=self.sends,
            max_sends=self.max_sends,
            next_resend_ms=self.next_resend_ms,
            delivery_status=self.delivery_status,
            delivery_updated_ms=self.delivery_updated_ms,
            submitted_ms=self.submitted_ms,
            finished_ms=self.finished_ms,
            client_ref=self.client_ref or None,
            locale=self.locale,
            app_hash=self.app_hash or None,
            provider=self.provider,
            fraud_ip=self.fraud_ip,
        )


class _MemoryState:
    """What the verification keys hold, and what their TTLs do in Redis."""

    def __init__(self, clock: Callable[[], int] = wall_clock_ms) -> None:
        self.clock = clock
        self._current: dict[str, _Record] = {}
        self._archived: dict[VerificationRef, _Record] = {}
        self._buckets: dict[str, tuple[float, float, int]] = {}
        """tag -> (hour tat, day tat, expires at)"""
        self._failed: dict[str, tuple[int, int]] = {}
        """tag -> (failed checks, expires at)"""
        self._ip: dict[str, tuple[float, int]] = {}
        self._provider_messages: dict[tuple[str, str], tuple[str, int]] = {}
        self.lane_entries: list[tuple[str, int]] = []
        """(message reference, send) of every send queued: what a lane stream would hold."""
        self.fraud_queries: list[FraudQuery | None] = []

    def _live_current(self, tag: str, now: int) -> _Record | None:
        record = self._current.get(tag)
        if record is not None and record.keep_until <= now:
            del self._current[tag]
            return None
        return record

    def _home(self, ref: VerificationRef, now: int) -> _Record | None:
        record = self._live_current(ref.tag, now)
        if record is not None and record.rand == ref.rand:
            return record
        archived = self._archived.get(ref)
        if archived is not None and archived.keep_until <= now:
            del self._archived[ref]
            return None
        return archived

    def _send_buckets(
        self, tag: str, limits: SendLimits, now: int
    ) -> tuple[int, str, tuple[float, float]]:
        hour: float | None = None
        day: float | None = None
        if (found := self._buckets.get(tag)) is not None and found[2] > now:
            hour, day = found[0], found[1]
        wait, new_hour = gcra(hour, limits.sends_per_hour, _HOUR_MS, now)
        if wait:
            return wait, "hour", (0, 0)
        wait, new_day = gcra(day, limits.sends_per_day, _DAY_MS, now)
        if wait:
            return wait, "day", (0, 0)
        return 0, "", (math.ceil(new_hour), math.ceil(new_day))


class _MemorySends(_MemoryState):
    """SendRepository. `fraud_verdict` is what the guard answers (a test sets it);
    `fraud_queries` what it was asked."""

    fraud_verdict = FraudVerdict(verdict="allow")

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
        now = self.clock()
        ip_wait = self._take_ip(ip, now) if ip is not None else 0
        # The fraud guard's budgets are not modelled here (fraud_check.lua is their one
        # home, held to its goals by the pumping simulator): the verdict is the one a test set.
        verdict = self.fraud_verdict if fraud is not None else None
        self.fraud_queries.append(fraud)
        checked = await self._precheck(tenant, tag, rand, limits, now)
        return msgspec.structs.replace(checked, ip_wait_ms=ip_wait, fraud=verdict)

    async def _precheck(
        self, tenant: str, tag: str, rand: str | None, limits: SendLimits, now: int
    ) -> SendPrecheck:
        ip_wait = 0
        record = self._live_current(tag, now)
        seen = record.rand if record is not None else ""
        is_open = record is not None and record.is_open(tenant, now)
        if rand is not None and (seen != rand or not is_open):
            return SendPrecheck(verdict="not_found", ip_wait_ms=ip_wait)
        if record is not None and is_open:
            if record.sends >= record.max_sends:
                return SendPrecheck(
                    verdict="max_sends", wait_ms=record.expires_ms - now, rand=seen, open=True,
                    ip_wait_ms=ip_wait,
                )  # fmt: skip
            if record.next_resend_ms > now:
                return SendPrecheck(
                    verdict="too_soon", wait_ms=record.next_resend_ms - now, rand=seen,
                    open=True, ip_wait_ms=ip_wait,
                )  # fmt: skip
        wait, which, _ = self._send_buckets(tag, limits, now)
        if wait:
            return SendPrecheck(
                verdict=which,  # type: ignore[arg-type]
                wait_ms=wait, rand=seen, open=is_open, ip_wait_ms=ip_wait,
            )  # fmt: skip
        if record is not None and is_open:
            return SendPrecheck(
                verdict="resend", rand=seen, open=True, salt=record.salt, ip_wait_ms=ip_wait
            )
        return SendPrecheck(verdict="new", rand=seen, ip_wait_ms=ip_wait)

    def _take_ip(self, ip: IpLimit, now: int) -> int:
        found = self._ip.get(ip.ip_tag)
        tat = found[0] if found is not None and found[1] > now else None
        wait, new_tat = gcra(tat, ip.limit, ip.period_ms, now)
        if not wait:
            self._ip[ip.ip_tag] = (math.ceil(new_tat), math.ceil(new_tat))
        return wait

    async def send_commit(self, request: SendRequest, code: NewCode) -> SendCommitted:
        now = self.clock()
        record = self._live_current(request.tag, now)
        seen = record.rand if record is not None else ""
        is_open = record is not None and record.is_open(request.tenant, now)
        if request.by_id:
            if seen != request.seen_rand or not is_open:
                return SendCommitted(verdict="not_found")
        elif seen != request.seen_rand or is_open != request.seen_open:
            return SendCommitted(verdict="conflict")
        if record is not None and is_open:
            if record.sends >= record.max_sends:
                return SendCommitted(verdict="max_sends", wait_ms=record.expires_ms - now)
            if record.next_resend_ms > now:
                return SendCommitted(verdict="too_soon", wait_ms=record.next_resend_ms - now)
        wait, which, tats = self._send_buckets(request.tag, request.limits, now)
        if wait:
            return SendCommitted(verdict=which, wait_ms=wait)  # type: ignore[arg-type]
        self._buckets[request.tag] = (tats[0], tats[1], math.ceil(max(tats)))
        created = not is_open
        if record is not None and is_open:
            record.previous_digest = record.digest
        else:
            if record is not None:
                self._archived[VerificationRef(request.tag, record.rand)] = record
            record = _Record(
                rand=request.new_rand,
                tenant=request.tenant,
                to=request.to,
                region=request.region,
                created_ms=now,
                max_attempts=request.max_attempts,
                max_sends=request.max_sends,
                salt=code.salt,
                accept_previous=request.accept_previous,
                client_ref=request.client_ref,
                fraud_prefix=request.fraud_prefix,
                fraud_ip=request.fraud_ip,
                provider=request.provider,
                locale=request.locale,
                app_hash=request.app_hash,
                attempts_left=request.max_attempts,
            )
            self._current[request.tag] = record
        record.sends += 1
        cooldowns = request.cooldowns_ms
        record.digest = code.digest
        record.expires_ms = now + request.ttl_ms
        record.keep_until = record.expires_ms + request.retention_ms
        record.next_resend_ms = now + cooldowns[min(record.sends, len(cooldowns)) - 1]
        record.delivery_status = delivery.DeliveryStatus.QUEUED.value
        record.delivery_updated_ms = now
        record.submitted_ms = None
        queued = DeliveryEvent(
            status=delivery.DeliveryStatus.QUEUED.value,
            at_ms=now,
            send=record.sends,
            provider=request.provider,
        )
        _push(record, queued)
        _push_flags(record, request.flagged, now)
        ref = VerificationRef(request.tag, record.rand)
        self.lane_entries.append((message_ref(ref, record.sends), record.sends))
        return SendCommitted(
            verdict="ok",
            created=created,
            now_ms=now,
            record=record.public(request.tag),
            queued=queued,
            lane_entry=f"{now}-{len(self.lane_entries)}",
        )


class _MemoryChecks(_MemoryState):
    """CheckRepository."""

    async def check_begin(
        self,
        *,
        tenant: str,
        tag: str,
        rand: str | None,
        failed_limit: int,
        failed_window_ms: int,
    ) -> CheckBegun:
        now = self.clock()
        failed, failed_until = self._failed.get(tag, (0, 0))
        if failed_until <= now:
            failed = 0
        if failed >= failed_limit:
            return CheckBegun(verdict="rate_limited", wait_ms=max(1, failed_until - now))
        record = self._live_current(tag, now)
        if (
            record is None
            or (rand is not None and record.rand != rand)
            or not record.is_open(tenant, now)
            or record.attempts_left <= 0
        ):
            return CheckBegun(verdict="not_found")
        record.attempts_left -= 1
        self._failed[tag] = (failed + 1, failed_until if failed else now + failed_window_ms)
        digests: tuple[bytes, ...] = (record.digest,)
        if record.accept_previous and record.previous_digest:
            digests = (record.digest, record.previous_digest)
        return CheckBegun(
            verdict="ok", rand=record.rand, salt=record.salt, digests=digests, sends=record.sends
        )

    async def check_finish(self, ref: VerificationRef, *, matched_send: int) -> CheckFinished:
        now = self.clock()
        record = self._live_current(ref.tag, now)
        if (
            record is None
            or record.rand != ref.rand
            or record.status != "pending"
            or record.expires_ms <= now
        ):
            return CheckFinished(verdict="not_found")
        if matched_send > 0 and (
            matched_send == record.sends
            or (record.accept_previous and matched_send == record.sends - 1)
        ):
            record.status, record.finished_ms = "approved", now
            failed, until = self._failed.get(ref.tag, (0, 0))
            if failed > 0 and until > now:
                self._failed[ref.tag] = (failed - 1, until)
            return CheckFinished(
                verdict="approved",
                attempts_left=record.attempts_left,
                created_ms=record.created_ms,
                region=record.region,
                fraud_prefix=record.fraud_prefix,
                fraud_ip=record.fraud_ip,
            )
        # Only wrong codes end it: when every attempt was used by one (see check_finish.lua).
        record.wrong_checks += 1
        if record.wrong_checks >= record.max_attempts:
            record.status, record.finished_ms = "failed", now
            return CheckFinished(verdict="failed")
        return CheckFinished(verdict="pending", attempts_left=record.attempts_left)


class _MemoryReads(_MemoryState):
    """VerificationReader."""

    async def read(self, ref: VerificationRef, *, tenant: str) -> Snapshot | None:
        now = self.clock()
        record = self._home(ref, now)
        if record is None or record.tenant != tenant:
            return None
        return Snapshot(record=record.public(ref.tag), events=tuple(record.events), now_ms=now)

    async def cancel(self, ref: VerificationRef, *, tenant: str) -> bool:
        now = self.clock()
        record = self._live_current(ref.tag, now)
        if record is None or record.rand != ref.rand or not record.is_open(tenant, now):
            return False
        record.status, record.finished_ms = "canceled", now
        return True


class _MemoryDeliveries(_MemoryState):
    """DeliveryRepository."""

    async def record_delivery(
        self,
        ref: VerificationRef,
        event: DeliveryEvent,
        *,
        lifts_cooldown: bool,
        retention_ms: int,  # noqa: ARG002 - a record here keeps the retention it was given
        lane_entry: str | None = None,  # noqa: ARG002 - no stream to acknowledge here
    ) -> DeliveryUpdate:
        now = self.clock()
        record = self._home(ref, now)
        if record is None or not 1 <= event.send <= record.sends:
            return DeliveryUpdate(verdict="unmatched")
        fingerprint = repr((event.send, event.status, event.provider, event.provider_status,
                            event.error_code))  # fmt: skip
        if fingerprint in record.reports_seen:
            return DeliveryUpdate(verdict="duplicate")
        record.reports_seen.add(fingerprint)
        _push(record, msgspec.structs.replace(event, at_ms=now))
        previous = record.delivery_status
        if event.send == record.sends:
            moved = delivery.next_status(
                delivery.DeliveryStatus(previous), delivery.DeliveryStatus(event.status)
            )
            if moved.value != previous:
                record.delivery_status, record.delivery_updated_ms = moved.value, now
                if moved is delivery.DeliveryStatus.SUBMITTED:
                    record.submitted_ms = now
                if lifts_cooldown and record.status == "pending":
                    record.next_resend_ms = now
        return DeliveryUpdate(
            verdict="recorded",
            previous=previous,
            current=record.delivery_status,
            submitted_ms=record.submitted_ms,
            region=record.region,
            now_ms=now,
        )

    async def remember_provider_message(
        self, provider: str, message_id: str, message_ref: str, ttl_ms: int
    ) -> None:
        self._provider_messages[provider, message_id] = (message_ref, self.clock() + ttl_ms)

    async def lookup_provider_message(self, provider: str, message_id: str) -> str | None:
        found = self._provider_messages.get((provider, message_id))
        if found is None or found[1] <= self.clock():
            return None
        return found[0]


class MemoryVerifications(_MemorySends, _MemoryChecks, _MemoryReads, _MemoryDeliveries):
    """SendRepository, CheckRepository, VerificationReader and DeliveryRepository in memory,
    over one state (as one Redis holds them all)."""


def _push(record: _Record, event: DeliveryEvent) -> None:
    record.events.append(event)
    del record.events[:-_MAX_EVENTS]


def _push_flags(record: _Record, flagged: tuple[tuple[str, str], ...], now: int) -> None:
    """The fraud guard's flags on this send (monitor mode), as send_commit.lua records them."""
    for rule, detail in flagged:
        flag = DeliveryEvent(
            status="flagged", at_ms=now, send=record.sends, provider_status=rule, detail=detail
        )
        _push(record, flag)


class MemoryFraud:
    """FraudRepository in memory: what was settled, the blocks a test puts in, the safe list."""

    def __init__(self) -> None:
        self.settled: list[tuple[str, bool, str, str, str, int]] = []
        self.blocked: dict[tuple[str, str], FraudBlock] = {}
        self.safe: dict[str, set[str]] = {}

    async def settle(
        self,
        *,
        tenant: str,
        approved: bool,
        country: str,
        prefix: str,
        ip: str,
        sends: int,
        now_ms: int,  # noqa: ARG002 - the memory blocks have no windows to date
    ) -> None:
        self.settled.append((tenant, approved, country, prefix, ip, sends))
        if approved:
            for key in (f"p:{prefix}", f"i:{ip}"):
                self.blocked.pop((tenant, key), None)

    async def blocks(self, tenant: str, now_ms: int) -> list[FraudBlock]:
        return [b for (t, _), b in self.blocked.items() if t == tenant and b.until_ms > now_ms]

    async def lift(self, tenant: str, key: str, now_ms: int) -> bool:
        found = self.blocked.get((tenant, key))
        if found is None or found.until_ms <= now_ms:
            return False
        del self.blocked[(tenant, key)]
        return True

    async def safe_list(
        self, tenant: str, *, add: str | None = None, remove: str | None = None
    ) -> list[str]:
        found = self.safe.setdefault(tenant, set())
        if add is not None:
            found.add(add)
        if remove is not None:
            found.discard(remove)
        return sorted(found)


class MemoryIdempotency:
    """IdempotencyRepository in memory."""

    def __init__(self, clock: Callable[[], int] = wall_clock_ms) -> None:
        self.clock = clock
        self._keys: dict[tuple[str, str], tuple[str, bool, bytes, int]] = {}
        """(tenant, key) -> (fingerprint, done, response, expires at)"""

    async def reserve(
        self, tenant: str, key: str, fingerprint: str, ttl_ms: int
    ) -> IdempotencyState:
        now = self.clock()
        found = self._keys.get((tenant, key))
        if found is None or found[3] <= now:
            self._keys[tenant, key] = (fingerprint, False, b"", now + ttl_ms)
            return IdempotencyState(verdict="reserved")
        if found[0] != fingerprint:
            return IdempotencyState(verdict="conflict")
        if not found[1]:
            return IdempotencyState(verdict="in_progress")
        return IdempotencyState(verdict="replay", response=found[2])

    async def complete(self, tenant: str, key: str, fingerprint: str, response: bytes) -> None:
        found = self._keys.get((tenant, key))
        if found is not None:
            self._keys[tenant, key] = (fingerprint, True, response, found[3])

    async def release(self, tenant: str, key: str) -> None:
        self._keys.pop((tenant, key), None)
