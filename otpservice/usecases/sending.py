"""Sending codes: start a verification (or resend on the number's open one) and resend by id.

Every limit is checked by the store before any argon2 work (the pre-check), the code is hashed
off the event loop, and the store keeps the digest and queues the SMS in one atomic step; the
lane then submits it. A request that is refused stores and sends nothing.

A tenant's test number (fixed_codes.py) stores its fixed code, hashed like any other, skips the
fraud guard, the per-number send limits and the resend cooldown, and sends nothing: its send is
recorded `delivered` by provider `test_number` (provider status `no_sms_sent`) at once, which
also takes it out of the lane.
"""

from __future__ import annotations

import secrets
import time

import msgspec

from otpservice import metrics
from otpservice.domain import message
from otpservice.domain.codes import generate_code
from otpservice.domain.delivery import DeliveryStatus
from otpservice.domain.phone import Destination, check_destination_allowed, parse_e164
from otpservice.domain.policy import cooldown_schedule_ms
from otpservice.errors import InvalidRequest, ServiceUnavailable, VerificationNotFound
from otpservice.hashing import SALT_BYTES
from otpservice.ids import Identifiers, VerificationRef
from otpservice.lane import Send
from otpservice.settings import Tenant
from otpservice.usecases.composing import SmsComposer, locales
from otpservice.usecases.fixed_codes import (
    NO_SMS_SENT,
    TEST_NUMBER_PROVIDER,
    TEST_NUMBER_SENDS_PER_WINDOW,
    FixedCodes,
)
from otpservice.usecases.fraud import FraudGuard
from otpservice.usecases.ports import (
    CodeHashing,
    DeliveryEvent,
    DeliveryRepository,
    FraudQuery,
    IpLimit,
    NewCode,
    SendCommitted,
    SendLimits,
    SendQueue,
    SendRepository,
    SendRequest,
    VerificationReader,
)
from otpservice.usecases.refusals import raise_for_send_verdict, rate_limited
from otpservice.views import VerificationView, verification_view

_MINUTE_MS = 60_000
_COMMIT_TRIES = 3


class _Target:
    """What a send is for: a start for a number, or a resend of one verification."""

    def __init__(
        self,
        tenant: Tenant,
        tag: str,
        *,
        rand: str | None = None,
        to: str = "",
        region: str = "",
        locale: str | None = None,
        app_hash: str = "",
        client_ref: str = "",
        ip: IpLimit | None = None,
        fraud: FraudQuery | None = None,
        fixed_code: str | None = None,
    ) -> None:
        self.tenant = tenant
        self.tag = tag
        self.rand = rand
        self.to = to
        self.region = region
        self.locale = locale
        """None: the verification's own (a resend by id)."""
        self.app_hash = app_hash
        self.client_ref = client_ref
        self.ip = ip
        self.fraud = fraud
        self.fixed_code = fixed_code
        """A test number's code: stored, never sent."""


class SendCodes:
    def __init__(
        self,
        repository: SendRepository,
        reader: VerificationReader,
        *,
        hasher: CodeHashing,
        composer: SmsComposer,
        queue: SendQueue,
        ids: Identifiers,
        guard: FraudGuard,
        provider: str,
        retention_ms: int,
        deliveries: DeliveryRepository,
    ) -> None:
        """`deliveries` records a test number's send as delivered (no SMS)."""
        self.repository = repository
        self.reader = reader
        self.deliveries = deliveries
        self.fixed_codes = FixedCodes(ids)
        self.hasher = hasher
        self.composer = composer
        self.queue = queue
        self.ids = ids
        self.guard = guard
        self.provider = provider
        self.retention_ms = retention_ms

    async def start(
        self,
        tenant: Tenant,
        *,
        to: str,
        locale: str | None,
        app_hash: str | None,
        client_ref: str | None,
        client_ip: str,
        end_user_ip: str | None = None,
    ) -> VerificationView:
        """Create a verification and queue its first code, or resend on the number's open one.
        `client_ip` is the address the per-IP limit counts; `end_user_ip` the end user's own,
        when the caller knows it (signals.ip): the fraud guard's per-IP rules need that one."""
        destination = parse_e164(to)
        check_destination_allowed(destination, tenant.policy)
        if app_hash is not None and not message.is_app_hash(app_hash):
            raise InvalidRequest("app_hash must be the 11-character Android SMS Retriever hash.")
        chosen = message.choose_locale(
            locale, destination.region, tenant.default_locale, locales(tenant)
        )
        fixed_code = self.fixed_codes.for_number(tenant, destination.e164)
        target = _Target(
            tenant,
            self.ids.number_tag(tenant.name, destination.e164),
            to=destination.e164,
            region=destination.region,
            locale=chosen,
            app_hash=app_hash or "",
            client_ref=client_ref or "",
            ip=IpLimit(
                ip_tag=self.ids.ip_tag(tenant.name, client_ip),
                limit=tenant.policy.limits.starts_per_ip_per_minute,
                period_ms=_MINUTE_MS,
            ),
            # A test number costs nothing and converts nothing: the guard does not count it.
            fraud=None if fixed_code else self.guard.query(tenant, destination, end_user_ip),
            fixed_code=fixed_code,
        )
        return await self._send(target)

    async def resend(self, tenant: Tenant, verification_id: str) -> VerificationView:
        ref = self.ids.ref_for_id(verification_id, tenant.name)
        if ref is None:
            raise VerificationNotFound
        fixed_code = self.fixed_codes.for_tag(tenant, ref.tag)
        fraud = None
        if tenant.policy.fraud.mode != "off" and fixed_code is None:
            # The guard needs the number's country and prefix: one read, for resends only.
            snapshot = await self.reader.read(ref, tenant=tenant.name)
            if snapshot is None:
                raise VerificationNotFound
            record = snapshot.record
            destination = Destination(e164=record.to, region=record.region, number_type="MOBILE")
            fraud = self.guard.query(tenant, destination, None)
            if fraud is not None:
                fraud = msgspec.structs.replace(fraud, ip=record.fraud_ip)
        target = _Target(tenant, ref.tag, rand=ref.rand, fraud=fraud, fixed_code=fixed_code)
        return await self._send(target)

    async def _send(self, target: _Target) -> VerificationView:
        policy = target.tenant.policy
        limits = SendLimits(
            sends_per_hour=policy.limits.sends_per_number_per_hour,
            sends_per_day=policy.limits.sends_per_number_per_day,
        )
        if target.fixed_code is not None:
            limits = SendLimits(
                sends_per_hour=TEST_NUMBER_SENDS_PER_WINDOW,
                sends_per_day=TEST_NUMBER_SENDS_PER_WINDOW,
            )
        ip = target.ip
        with self.hasher.admit("resend" if target.rand is not None else "start"):
            return await self._send_admitted(target, limits, ip)

    async def _send_admitted(
        self, target: _Target, limits: SendLimits, ip: IpLimit | None
    ) -> VerificationView:
        policy = target.tenant.policy
        fraud = target.fraud
        counted = False  # the guard counted this send: take it back unless it happens
        try:
            for _ in range(_COMMIT_TRIES):
                check = await self.repository.send_precheck(
                    tenant=target.tenant.name,
                    tag=target.tag,
                    rand=target.rand,
                    limits=limits,
                    ip=ip,
                    fraud=fraud if not counted else None,
                )
                # A retry after a conflict is the same request: its token and its count stand.
                ip = None
                flagged: tuple[tuple[str, str], ...] = ()
                if fraud is not None and check.fraud is not None:
                    flagged = self.guard.judge(fraud, check.fraud)  # raises on a refusal
                    counted = True
                if check.ip_wait_ms:
                    raise rate_limited("ip", check.ip_wait_ms)
                raise_for_send_verdict(check.verdict, check.wait_ms)
                salt = check.salt if check.verdict == "resend" else secrets.token_bytes(SALT_BYTES)
                seen_open = check.verdict == "resend"
                new_rand = self.ids.new_rand()
                ref = VerificationRef(target.tag, check.rand if seen_open else new_rand)
                code = target.fixed_code or generate_code(policy.code_length)
                digest = await self.hasher.hash_code_async(code, salt)
                request = self._request(target, limits, check.rand, seen_open, new_rand)
                if counted and fraud is not None:
                    request = msgspec.structs.replace(
                        request, fraud_prefix=fraud.prefix, fraud_ip=fraud.ip, flagged=flagged
                    )
                committed = await self.repository.send_commit(
                    request, NewCode(salt=salt, digest=digest, sealed=self.composer.seal(code, ref))
                )
                if committed.verdict == "conflict":
                    continue
                raise_for_send_verdict(committed.verdict, committed.wait_ms)
                counted = False  # sent: the guard keeps its count
                if target.fixed_code is not None:
                    return await self._record_test_number(target, committed)
                if committed.created:
                    metrics.count_started(target.region)
                return self._queue(target, committed, code, flagged)
            # Only a storm of concurrent starts for one number gets here.
            raise ServiceUnavailable("Too many concurrent requests for this number; retry.")
        finally:
            if counted and fraud is not None:
                await self.guard.release(fraud)

    def _request(
        self, target: _Target, limits: SendLimits, seen_rand: str, seen_open: bool, new_rand: str
    ) -> SendRequest:
        policy = target.tenant.policy
        return SendRequest(
            tenant=target.tenant.name,
            tag=target.tag,
            by_id=target.rand is not None,
            seen_rand=seen_rand,
            seen_open=seen_open,
            new_rand=new_rand,
            to=target.to,
            region=target.region,
            locale=target.locale or "",
            app_hash=target.app_hash,
            client_ref=target.client_ref,
            provider=self.provider if target.fixed_code is None else TEST_NUMBER_PROVIDER,
            limits=limits,
            ttl_ms=policy.code_ttl_seconds * 1000,
            max_attempts=policy.max_attempts,
            max_sends=policy.max_sends,
            # Nothing is sent to a test number: no cooldown to wait between its codes.
            cooldowns_ms=(
                cooldown_schedule_ms(policy)
                if target.fixed_code is None
                else (0,) * policy.max_sends
            ),
            accept_previous=policy.accept_previous_code,
            retention_ms=self.retention_ms,
        )

    async def _record_test_number(
        self, target: _Target, committed: SendCommitted
    ) -> VerificationView:
        """A test number's send: recorded delivered at once (which also takes its entry out of
        the lane), never handed to the lane, never counted as started."""
        record = committed.record
        assert record is not None  # verdict ok
        event = DeliveryEvent(
            status=DeliveryStatus.DELIVERED.value,
            at_ms=0,
            send=record.sends,
            provider=TEST_NUMBER_PROVIDER,
            provider_status=NO_SMS_SENT,
        )
        update = await self.deliveries.record_delivery(
            record.ref,
            event,
            lifts_cooldown=False,
            retention_ms=self.retention_ms,
            lane_entry=committed.lane_entry or None,
        )
        events: tuple[DeliveryEvent, ...] = ()
        if committed.queued is not None:
            events = (committed.queued,)
        if update.verdict == "recorded":
            record = msgspec.structs.replace(
                record, delivery_status=update.current, delivery_updated_ms=update.now_ms
            )
            events = (*events, msgspec.structs.replace(event, at_ms=update.now_ms))
        public_id = self.ids.public_id(record.ref, target.tenant.name)
        return verification_view(public_id, record, events, committed.now_ms)

    def _queue(
        self,
        target: _Target,
        committed: SendCommitted,
        code: str,
        flagged: tuple[tuple[str, str], ...],
    ) -> VerificationView:
        record = committed.record
        assert record is not None  # verdict ok
        tenant = target.tenant
        now_ms = committed.now_ms
        remaining = max(0.0, (record.expires_ms - now_ms) / 1000)
        send = Send(
            ref=record.ref,
            number=record.sends,
            region=record.region,
            deadline=time.monotonic() + remaining,
            shard=committed.lane_shard,
            entry=committed.lane_entry,
        )
        self.queue.enqueue(
            self.composer.job(
                tenant,
                send,
                to=record.to,
                code=code,
                # A start speaks the request's language; a resend by id the verification's.
                locale=target.locale or record.locale or tenant.default_locale,
                app_hash=target.app_hash if target.rand is None else record.app_hash or "",
                remaining=remaining,
            )
        )
        # The response shows the events the store just recorded (`queued`, and the fraud guard's
        # flags in monitor mode), as GET would.
        events: tuple[DeliveryEvent, ...] = ()
        if committed.queued is not None:
            events = (
                committed.queued,
                *(
                    DeliveryEvent(
                        status="flagged",
                        at_ms=now_ms,
                        send=record.sends,
                        provider_status=rule,
                        detail=detail,
                    )
                    for rule, detail in flagged
                ),
            )
        public_id = self.ids.public_id(record.ref, tenant.name)
        return verification_view(public_id, record, events, now_ms)
