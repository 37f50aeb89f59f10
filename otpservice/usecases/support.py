"""The support console's use cases: look a number's (or an id's) verifications up, the
tenant's delivery overview, and the audit trail of lookups; always within the support user's
tenants. What leaves here never holds a full phone number, a code, a salt or a digest.

The ports (HistoryReader, AuditTrail, StatsReader) are implemented on Redis by
store/history.py, store/console.py and store/stats.py.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Literal, Protocol

import msgspec
import phonenumbers

from otpservice.domain.masking import mask_number
from otpservice.domain.phone import Destination, parse_destination
from otpservice.domain.stats import WindowSummary, summarise
from otpservice.errors import InvalidPhoneNumber
from otpservice.ids import RAND_LEN, TAG_LEN, Identifiers, VerificationRef
from otpservice.settings import SupportUser, Tenant
from otpservice.usecases.ports import DeliveryEvent, FraudBlock, VerificationRecord
from otpservice.views import VerificationStatus

# --- records and ports --------------------------------------------------------------------------


class SupportRecord(msgspec.Struct, frozen=True, kw_only=True):
    """A verification as the console reads it: the record, its events and its check counts."""

    record: VerificationRecord
    events: tuple[DeliveryEvent, ...]
    max_attempts: int
    wrong_checks: int


class NumberHistory(msgspec.Struct, frozen=True, kw_only=True):
    now_ms: int
    records: tuple[SupportRecord, ...]
    """The number's verifications still kept, newest first."""


class HistoryReader(Protocol):
    async def number(self, tenant: str, tag: str) -> NumberHistory:
        """The latest verification of the number (of the tenant) and the earlier ones kept."""
        ...

    async def verification(self, tenant: str, ref: VerificationRef) -> SupportRecord | None: ...


class AuditEntry(msgspec.Struct, frozen=True, kw_only=True):
    at_ms: int
    user: str
    tenant: str
    kind: Literal["number", "id"]
    query: str
    """The masked number, or the id."""
    found: int
    """How many verifications the lookup showed."""


class AuditTrail(Protocol):
    async def record(self, entry: AuditEntry) -> None: ...

    async def recent(self, tenant: str, limit: int) -> list[AuditEntry]:
        """The tenant's latest entries, newest first."""
        ...


class StatsPeriods(msgspec.Struct, frozen=True, kw_only=True):
    """One tenant's counters per period, oldest first: (period start ms, counters)."""

    slots: tuple[tuple[int, dict[str, int]], ...]
    """Ten-minute periods: the last hour."""
    hours: tuple[tuple[int, dict[str, int]], ...]
    """Hours: the last day."""


class StatsReader(Protocol):
    async def periods(self, tenant: str, now_ms: int) -> StatsPeriods: ...


class FraudBlocks(Protocol):
    async def blocks(self, tenant: Tenant) -> list[FraudBlock]: ...


# --- what the console shows ---------------------------------------------------------------------


class NotInScope(Exception):
    """The tenant is not one of the user's (or does not exist): answered like a missing page."""


class UnreadableQuery(Exception):
    """The lookup is neither a phone number nor a verification id; the message says why."""


class SmsView(msgspec.Struct, frozen=True, kw_only=True):
    send: int
    events: tuple[DeliveryEvent, ...]
    """This SMS's events in the order they happened (flags of the fraud guard included)."""


class VerificationDetails(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    tenant: str
    to: str
    """Masked: every digit but the last two hidden."""
    region: str
    status: VerificationStatus
    created_ms: int
    expires_ms: int
    finished_ms: int | None
    attempts_used: int
    max_attempts: int
    wrong_checks: int
    sends: int
    max_sends: int
    provider: str
    delivery_status: str
    sms: tuple[SmsView, ...]
    """In the order they were sent: the last is the newest."""
    looked_up: bool = False
    """The verification whose id was asked for."""


class LookupResult(msgspec.Struct, frozen=True, kw_only=True):
    tenant: str
    kind: Literal["number", "id"]
    query: str
    """The masked number, or the id."""
    region: str
    now_ms: int
    verifications: tuple[VerificationDetails, ...]
    blocks: tuple[FraudBlock, ...]
    """The fraud guard's blocks in force on the number's prefix."""


class Overview(msgspec.Struct, frozen=True, kw_only=True):
    tenant: str
    now_ms: int
    last_hour: WindowSummary
    last_day: WindowSummary


def wall_ms() -> int:
    return time.time_ns() // 1_000_000


_ID = re.compile(rf"[a-z2-7]{{{RAND_LEN + TAG_LEN}}}")
_SEPARATORS = re.compile(r"[\s().\-/]")
MAX_QUERY = 64


def read_query(
    text: str, tenant: Tenant
) -> tuple[Literal["number"], Destination] | tuple[Literal["id"], str]:
    """A phone number in any common spelling ('+48 601-234-567', '0048601234567',
    '48601234567', or national digits when the tenant serves one country), or an id."""
    raw = text.strip()
    if not raw or len(raw) > MAX_QUERY:
        raise UnreadableQuery("Type a phone number with its country code, or a verification id.")
    compact = raw.replace(" ", "").lower()
    if _ID.fullmatch(compact):
        return "id", compact
    digits = _SEPARATORS.sub("", raw)
    if digits.startswith("00"):
        digits = "+" + digits[2:]
    try:
        if digits.startswith("+"):
            return "number", parse_destination(digits)
        if digits.isascii() and digits.isdigit():
            return "number", _without_plus(digits, tenant)
    except InvalidPhoneNumber as exc:
        raise UnreadableQuery(f"{exc.detail} Check the number and its country code.") from None
    raise UnreadableQuery(
        "That is neither a phone number nor a verification id (42 letters and digits)."
    )


def _without_plus(digits: str, tenant: Tenant) -> Destination:
    try:
        return parse_destination("+" + digits)
    except InvalidPhoneNumber:
        countries = tenant.policy.allowed_countries
        if len(countries) != 1:
            raise
    # National digits of the tenant's only country ('0601 234 567' style).
    try:
        number = phonenumbers.parse(digits, countries[0])
    except phonenumbers.NumberParseException:
        raise InvalidPhoneNumber("Not a valid phone number.") from None
    return parse_destination(
        phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    )


class SupportDesk:
    """Lookups, overview and audit trail, each refused outside the user's tenants."""

    AUDIT_PAGE = 200

    def __init__(
        self,
        tenants: Mapping[str, Tenant],
        ids: Identifiers,
        *,
        history: HistoryReader,
        audit: AuditTrail,
        stats: StatsReader,
        fraud: FraudBlocks,
        clock: Callable[[], int] = wall_ms,
    ) -> None:
        self.tenants = tenants
        self.ids = ids
        self.history = history
        self.audit_trail = audit
        self.stats = stats
        self.fraud = fraud
        self.clock = clock

    def tenant_for(self, user: SupportUser, name: str) -> Tenant:
        tenant = self.tenants.get(name)
        if tenant is None or name not in user.tenants:
            raise NotInScope
        return tenant

    def scope(self, user: SupportUser) -> list[str]:
        """The user's tenants that exist, in the order the configuration lists them."""
        return [name for name in user.tenants if name in self.tenants]

    async def lookup(self, user: SupportUser, tenant_name: str, query: str) -> LookupResult:
        tenant = self.tenant_for(user, tenant_name)
        kind, value = read_query(query, tenant)
        if kind == "number":
            assert isinstance(value, Destination)
            tag = self.ids.number_tag(tenant.name, value.e164)
            history = await self.history.number(tenant.name, tag)
            result = await self._result(tenant, "number", mask_number(value.e164), history, "")
        else:
            assert isinstance(value, str)
            result = await self._by_id(user, tenant, value)
        await self.audit_trail.record(
            AuditEntry(
                at_ms=self.clock(),
                user=user.name,
                tenant=result.tenant,
                kind=result.kind,
                query=result.query,
                found=len(result.verifications),
            )
        )
        return result

    async def _by_id(self, user: SupportUser, chosen: Tenant, verification_id: str) -> LookupResult:
        # An id opens with its own tenant's key only: try the chosen tenant, then the user's
        # others, so nobody has to know which application a user logged in to.
        others = [self.tenants[n] for n in self.scope(user) if n != chosen.name]
        for tenant in [chosen, *others]:
            ref = self.ids.ref_for_id(verification_id, tenant.name)
            if ref is None:
                break
            found = await self.history.verification(tenant.name, ref)
            if found is None:
                continue
            history = await self.history.number(tenant.name, ref.tag)
            if all(r.record.ref.rand != ref.rand for r in history.records):
                # Older than the number's kept list: shown on its own, after the others.
                history = NumberHistory(now_ms=history.now_ms, records=(*history.records, found))
            return await self._result(tenant, "id", verification_id, history, ref.rand)
        return LookupResult(
            tenant=chosen.name,
            kind="id",
            query=verification_id,
            region="",
            now_ms=self.clock(),
            verifications=(),
            blocks=(),
        )

    async def _result(
        self,
        tenant: Tenant,
        kind: Literal["number", "id"],
        query: str,
        history: NumberHistory,
        looked_up: str,
    ) -> LookupResult:
        records = history.records
        e164 = records[0].record.to if records else ""
        blocks: tuple[FraudBlock, ...] = ()
        if e164:
            blocks = tuple(
                block
                for block in await self.fraud.blocks(tenant)
                if block.key.startswith("p:") and e164.startswith(block.key[2:])
                and block.until_ms > history.now_ms
            )  # fmt: skip
        return LookupResult(
            tenant=tenant.name,
            kind=kind,
            query=query,
            region=records[0].record.region if records else "",
            now_ms=history.now_ms,
            verifications=tuple(
                self._details(tenant, found, history.now_ms, looked_up) for found in records
            ),
            blocks=blocks,
        )

    def _details(
        self, tenant: Tenant, found: SupportRecord, now_ms: int, looked_up: str
    ) -> VerificationDetails:
        record = found.record
        status: VerificationStatus = record.status
        if status == "pending" and now_ms >= record.expires_ms:
            status = "expired"
        by_send: dict[int, list[DeliveryEvent]] = {}
        for event in found.events:
            by_send.setdefault(event.send, []).append(event)
        sms = tuple(
            SmsView(send=send, events=tuple(sorted(events, key=lambda e: e.at_ms)))
            for send, events in sorted(by_send.items())
        )
        max_attempts = max(found.max_attempts, record.attempts_left)
        return VerificationDetails(
            id=self.ids.public_id(record.ref, tenant.name),
            tenant=tenant.name,
            to=mask_number(record.to),
            region=record.region,
            status=status,
            created_ms=record.created_ms,
            expires_ms=record.expires_ms,
            finished_ms=record.finished_ms,
            attempts_used=max(0, max_attempts - max(0, record.attempts_left)),
            max_attempts=max_attempts,
            wrong_checks=found.wrong_checks,
            sends=record.sends,
            max_sends=record.max_sends,
            provider=record.provider,
            delivery_status=record.delivery_status,
            sms=sms,
            looked_up=record.ref.rand == looked_up,
        )

    async def overview(self, user: SupportUser, tenant_name: str) -> Overview:
        tenant = self.tenant_for(user, tenant_name)
        now_ms = self.clock()
        periods = await self.stats.periods(tenant.name, now_ms)
        return Overview(
            tenant=tenant.name,
            now_ms=now_ms,
            last_hour=summarise(periods.slots[0][0] if periods.slots else now_ms, periods.slots),
            last_day=summarise(periods.hours[0][0] if periods.hours else now_ms, periods.hours),
        )

    async def audit(self, user: SupportUser, tenant_names: Sequence[str]) -> list[AuditEntry]:
        """The lookups of these tenants (each must be the user's), newest first."""
        entries: list[AuditEntry] = []
        for name in tenant_names:
            self.tenant_for(user, name)
            entries.extend(await self.audit_trail.recent(name, self.AUDIT_PAGE))
        entries.sort(key=lambda e: -e.at_ms)
        return entries[: self.AUDIT_PAGE]
