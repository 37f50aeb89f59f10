"""The use cases: start, resend, verify, cancel, read a verification, record a delivery report.

No Litestar here: the API calls these with a resolved tenant and plain values. Every limit is
checked in Redis before any argon2 work; argon2 runs off the event loop.
"""

from __future__ import annotations

import logging
import re
import secrets
import time
from typing import Literal

from otpservice import metrics
from otpservice.domain import delivery, message
from otpservice.domain.codes import check_code_format, generate_code
from otpservice.domain.phone import Destination, check_destination_allowed, parse_destination
from otpservice.domain.policy import ttl_minutes
from otpservice.errors import (
    InvalidRequest,
    MaxSendsReached,
    RateLimited,
    ResendTooSoon,
    ServiceUnavailable,
    VerificationNotFound,
)
from otpservice.hashing import SALT_BYTES, CodeHasher, matching_digest
from otpservice.lane import SendJob, SendLane
from otpservice.providers.base import SmsMessage, SubmitReceipt
from otpservice.providers.dlr import RawReport
from otpservice.sealing import CodeSealer
from otpservice.settings import Settings, Tenant
from otpservice.store.keys import Keyspace, NumberKeys, VerificationKeys
from otpservice.store.lane_store import ClaimedSend
from otpservice.store.redis_store import SendCommit, SendRequest, VerificationStore
from otpservice.views import CheckView, VerificationView, event_fragment, view_from_record

log = logging.getLogger(__name__)

APP_HASH_RE = re.compile(r"^[A-Za-z0-9+/]{11}$")
_MINUTE_MS = 60_000
_COMMIT_TRIES = 3


class OtpService:
    def __init__(
        self,
        settings: Settings,
        store: VerificationStore,
        hasher: CodeHasher,
        lane: SendLane,
        provider_name: str,
    ) -> None:
        self.settings = settings
        self.store = store
        self.keys: Keyspace = store.keys
        self.hasher = hasher
        self.lane = lane
        self.provider_name = provider_name
        self.sealer = CodeSealer(settings.pepper)
        self._tenants = {t.name: t for t in settings.tenants}

    # --- start and resend -------------------------------------------------------------------

    async def start(
        self,
        tenant: Tenant,
        *,
        to: str,
        locale: str | None,
        app_hash: str | None,
        client_ref: str | None,
        client_ip: str,
    ) -> VerificationView:
        """Create a verification and queue its first code, or resend on the number's open one."""
        policy = tenant.policy
        destination = parse_destination(to)
        check_destination_allowed(destination, policy)
        if app_hash is not None and not APP_HASH_RE.match(app_hash):
            raise InvalidRequest("app_hash must be the 11-character Android SMS Retriever hash.")
        chosen = message.choose_locale(
            locale, destination.region, tenant.default_locale, self._locales(tenant)
        )
        number = self.keys.number(destination.e164, tenant.name)
        return await self._send(
            tenant,
            number,
            destination,
            mode="number",
            rand="",
            locale=chosen,
            app_hash=app_hash or "",
            client_ref=client_ref or "",
            rate=(
                self.keys.ip_bucket(tenant.name, client_ip),
                policy.limits.starts_per_ip_per_minute,
                _MINUTE_MS,
            ),
        )

    async def resend(self, tenant: Tenant, verification_id: str) -> VerificationView:
        keys = self.keys.verification(verification_id, tenant.name)
        if keys is None:
            raise VerificationNotFound
        snapshot = await self.store.read(keys)
        if snapshot is None:
            raise VerificationNotFound
        fields = snapshot.fields
        destination = Destination(
            e164=fields["to"].decode(), region=fields["cc"].decode(), number_type="MOBILE"
        )
        number = NumberKeys(keys.tag, tenant.name)
        return await self._send(
            tenant,
            number,
            destination,
            mode="id",
            rand=keys.rand,
            locale=fields.get("lc", b"").decode() or tenant.default_locale,
            app_hash=fields.get("ah", b"").decode(),
            client_ref=fields.get("cr", b"").decode(),
        )

    async def _send(
        self,
        tenant: Tenant,
        number: NumberKeys,
        destination: Destination,
        *,
        mode: Literal["number", "id"],
        rand: str,
        locale: str,
        app_hash: str,
        client_ref: str,
        rate: tuple[str, int, int] | None = None,
    ) -> VerificationView:
        """`rate`: the per-IP bucket of a start, taken in the same round trip as the pre-check."""
        policy = tenant.policy
        for _ in range(_COMMIT_TRIES):
            wait, check = await self.store.send_check(
                number,
                mode=mode,
                tenant=tenant.name,
                rand=rand,
                sends_per_hour=policy.limits.sends_per_number_per_hour,
                sends_per_day=policy.limits.sends_per_number_per_day,
                max_sends=policy.max_sends,
                cooldown_base_ms=policy.resend_cooldown_seconds * 1000,
                cooldown_cap_ms=policy.resend_cooldown_max_seconds * 1000,
                rate=rate,
            )
            rate = None  # a retry after a conflict is the same request: take the token once
            if wait:
                raise self._limited("ip", wait)
            self._raise_for_send_verdict(check.verdict, check.wait_ms)
            existing = check.rand if check.verdict == "resend" else ""
            salt = check.salt if existing else secrets.token_bytes(SALT_BYTES)
            new_rand = self.keys.new_rand()
            code = generate_code(policy.code_length)
            digest = await self.hasher.hash_code_async(code, salt)
            commit = await self.store.send_commit(
                number,
                self._send_request(
                    tenant=tenant,
                    destination=destination,
                    mode=mode,
                    existing=existing,
                    new_rand=new_rand,
                    # The script keeps `existing` or creates `new_rand`, or answers conflict.
                    sealed_code=self.sealer.seal(code, number.tag + (existing or new_rand)),
                    salt=salt,
                    digest=digest,
                    locale=locale,
                    app_hash=app_hash,
                    client_ref=client_ref,
                ),
            )
            if commit.verdict == "conflict":
                continue
            self._raise_for_send_verdict(commit.verdict, commit.wait_ms)
            view = self._queue_send(
                tenant=tenant,
                number=number,
                destination=destination,
                commit=commit,
                code=code,
                locale=locale,
                app_hash=app_hash,
            )
            if commit.created:
                metrics.count_started(destination.region)
            return view
        # Only a storm of concurrent starts for one number gets here.
        raise ServiceUnavailable("Too many concurrent requests for this number; retry.")

    def _send_request(
        self,
        *,
        tenant: Tenant,
        destination: Destination,
        mode: Literal["number", "id"],
        existing: str,
        new_rand: str,
        sealed_code: bytes,
        salt: bytes,
        digest: bytes,
        locale: str,
        app_hash: str,
        client_ref: str,
    ) -> SendRequest:
        policy = tenant.policy
        return SendRequest(
            mode=mode,
            tenant=tenant.name,
            expected_rand=existing,
            new_rand=new_rand,
            salt=salt,
            digest=digest,
            sends_per_hour=policy.limits.sends_per_number_per_hour,
            sends_per_day=policy.limits.sends_per_number_per_day,
            ttl_ms=policy.code_ttl_seconds * 1000,
            max_attempts=policy.max_attempts,
            max_sends=policy.max_sends,
            cooldown_base_ms=policy.resend_cooldown_seconds * 1000,
            cooldown_cap_ms=policy.resend_cooldown_max_seconds * 1000,
            retention_ms=self.settings.retention_seconds * 1000,
            e164=destination.e164,
            region=destination.region,
            client_ref=client_ref,
            accept_previous=policy.accept_previous_code,
            provider=self.provider_name,
            queued_event=event_fragment("queued", self.provider_name),
            locale=locale,
            app_hash=app_hash,
            sealed_code=sealed_code,
            consumer=self.lane.consumer,
        )

    def _queue_send(
        self,
        *,
        tenant: Tenant,
        number: NumberKeys,
        destination: Destination,
        commit: SendCommit,
        code: str,
        locale: str,
        app_hash: str,
    ) -> VerificationView:
        keys = number.verification(commit.rand)
        # The response shows the `queued` event the script just stored, as GET would.
        sends = int(commit.fields.get("sn", b"0"))
        queued = b'{"at":%d,"send":%d,' % (commit.now_ms, sends) + event_fragment(
            "queued", self.provider_name
        )
        view = view_from_record(keys.id, commit.fields, commit.now_ms, [queued])
        remaining = max(0.0, (view.expires_ms - commit.now_ms) / 1000)
        self.lane.enqueue(
            SendJob(
                verification_id=keys.id,
                send=view.sends,
                region=destination.region,
                message=self._message(
                    tenant,
                    keys.id,
                    view.sends,
                    to=destination.e164,
                    code=code,
                    locale=locale,
                    app_hash=app_hash,
                    remaining=remaining,
                ),
                deadline=time.monotonic() + remaining,
                shard=keys.shard,
                entry=commit.entry,
            )
        )
        return view

    def _message(
        self,
        tenant: Tenant,
        verification_id: str,
        send: int,
        *,
        to: str,
        code: str,
        locale: str,
        app_hash: str,
        remaining: float,
    ) -> SmsMessage:
        text = message.render_sms(
            self._template(tenant, locale),
            code=code,
            app=tenant.app_name,
            minutes=ttl_minutes(tenant.policy),
            webotp_domain=tenant.webotp_domain,
            app_hash=app_hash or None,
        )
        return SmsMessage(
            to=to,
            text=text,
            sender=tenant.sender,
            external_id=f"{verification_id}-{send}",
            validity_seconds=int(remaining),
            webhook_url=self._webhook_url(),
        )

    async def reclaim(self, claimed: ClaimedSend) -> SendJob | None:
        """A send another process left unfinished, rebuilt to be submitted by this one; None
        (and its delivery recorded failed) when that cannot be done."""
        tenant = self._tenants.get(claimed.tenant)
        code = self.sealer.open(claimed.sealed_code, claimed.verification_id)
        if tenant is None or code is None:
            # The tenant left the configuration, or the pepper changed: the code is lost.
            log.warning("a claimed lane send cannot be rebuilt (tenant or pepper changed)")
            metrics.count_send(self.provider_name, "failed")
            await self.record_delivery(
                provider=self.provider_name,
                verification_id=claimed.verification_id,
                send=claimed.send,
                status=delivery.DeliveryStatus.FAILED,
                provider_status="unrecoverable_lane_entry",
                lane=(claimed.shard, claimed.entry),
            )
            return None
        remaining = max(0.0, (claimed.expires_ms - claimed.now_ms) / 1000)
        return SendJob(
            verification_id=claimed.verification_id,
            send=claimed.send,
            region=claimed.region,
            message=self._message(
                tenant,
                claimed.verification_id,
                claimed.send,
                to=claimed.to,
                code=code,
                locale=claimed.locale or tenant.default_locale,
                app_hash=claimed.app_hash,
                remaining=remaining,
            ),
            deadline=time.monotonic() + remaining,
            shard=claimed.shard,
            entry=claimed.entry,
            redelivered=True,
        )

    def _raise_for_send_verdict(self, verdict: str, wait_ms: int) -> None:
        if verdict in {"new", "resend", "ok", "conflict"}:
            return
        if verdict == "not_found":
            raise VerificationNotFound
        if verdict == "max_sends":
            metrics.count_rate_limited("max_sends")
            raise MaxSendsReached(
                retry_after=_seconds(wait_ms),
                detail="This verification has used all its sends; a new one can start when it"
                " expires.",
            )
        if verdict == "too_soon":
            metrics.count_rate_limited("resend_cooldown")
            raise ResendTooSoon(retry_after=_seconds(wait_ms))
        scope = {"hour": "number_hour", "day": "number_day"}[verdict]
        raise self._limited(scope, wait_ms)

    # --- verify -----------------------------------------------------------------------------

    async def verify(
        self, tenant: Tenant, *, verification_id: str | None, to: str | None, code: str
    ) -> CheckView:
        """Check a code. Approves a verification at most once, even under concurrent checks."""
        if (verification_id is None) == (to is None):
            raise InvalidRequest("Give exactly one of `id` and `to`.")
        check_code_format(code, tenant.policy.code_length)
        limits = tenant.policy.limits
        if verification_id is not None:
            keys = self.keys.verification(verification_id, tenant.name)
            if keys is None:
                metrics.count_check("not_found")
                raise VerificationNotFound
            number = NumberKeys(keys.tag, tenant.name)
            begin = await self.store.check_begin(
                mode="id",
                lookup_key=keys.record,
                failed_checks_key=number.failed_checks,
                record_prefix=number.record_prefix,
                tenant=tenant.name,
                rand=keys.rand,
                failed_limit=limits.failed_checks_per_number,
                failed_window_ms=limits.failed_checks_window_seconds * 1000,
            )
        else:
            assert to is not None
            number = self.keys.number(parse_destination(to).e164, tenant.name)
            begin = await self.store.check_begin(
                mode="number",
                lookup_key=number.index,
                failed_checks_key=number.failed_checks,
                record_prefix=number.record_prefix,
                tenant=tenant.name,
                rand="",
                failed_limit=limits.failed_checks_per_number,
                failed_window_ms=limits.failed_checks_window_seconds * 1000,
            )
        if begin.verdict == "rate_limited":
            raise self._limited("failed_checks", begin.wait_ms)
        if begin.verdict == "not_found":
            metrics.count_check("not_found")
            raise VerificationNotFound
        keys = number.verification(begin.rand)
        candidate = await self.hasher.hash_code_async(code, begin.salt)
        stored = [begin.current] + ([begin.previous] if begin.previous else [])
        found = matching_digest(candidate, stored)
        matched_send = begin.sends - found if found >= 0 else 0
        finish = await self.store.check_finish(keys, number.failed_checks, matched_send)
        if finish.verdict == "not_found":
            metrics.count_check("not_found")
            raise VerificationNotFound
        if finish.verdict == "approved":
            metrics.count_check("approved")
            metrics.count_approved(finish.region, time.time() - finish.created_ms / 1000)
            return CheckView(
                id=keys.id, status="approved", valid=True, attempts_left=finish.attempts_left
            )
        metrics.count_check("failed" if finish.verdict == "failed" else "wrong_code")
        return CheckView(
            id=keys.id, status=finish.verdict, valid=False, attempts_left=finish.attempts_left
        )

    # --- cancel and read --------------------------------------------------------------------

    async def cancel(self, tenant: Tenant, verification_id: str) -> VerificationView:
        keys = self._keys_or_404(tenant, verification_id)
        if not await self.store.cancel(keys):
            raise VerificationNotFound
        return await self.read(tenant, verification_id)

    async def read(self, tenant: Tenant, verification_id: str) -> VerificationView:
        keys = self._keys_or_404(tenant, verification_id)
        snapshot = await self.store.read(keys)
        if snapshot is None:
            raise VerificationNotFound
        return view_from_record(keys.id, snapshot.fields, snapshot.now_ms, snapshot.events)

    # --- delivery ---------------------------------------------------------------------------

    async def ingest_reports(self, provider: str, reports: list[RawReport]) -> tuple[int, int]:
        """Apply a webhook's delivery reports; (recorded, unmatched). Idempotent."""
        recorded = unmatched = 0
        for report in reports:
            status = delivery.normalize_provider_status(report.raw_status)
            metrics.count_dlr(provider, status.value)
            target = await self._send_for(provider, report.message_ref)
            known = target is not None and await self.record_delivery(
                provider=provider,
                verification_id=target[0],
                send=target[1],
                status=status,
                provider_status=_short(report.raw_status),
                error_code=_short(report.error_code),
            )
            if known:
                recorded += 1
            else:
                unmatched += 1
                metrics.count_unmatched_dlr(provider)
        return recorded, unmatched

    async def _send_for(self, provider: str, message_ref: str) -> tuple[str, int] | None:
        """(verification id, send number) of a provider's message reference."""
        verification_id, _, send = message_ref.rpartition("-")
        if send.isdigit() and self.keys.verification(verification_id, "") is not None:
            # Our own externalId: MessageFlow and the sandbox echo it back.
            return verification_id, int(send)
        # The provider's own id (Flowstates): remembered when the provider accepted the SMS.
        return await self.store.lookup_provider_message(
            self.keys.provider_message(provider, message_ref)
        )

    async def record_delivery(
        self,
        *,
        provider: str,
        verification_id: str,
        send: int,
        status: delivery.DeliveryStatus,
        provider_status: str | None = None,
        error_code: str | None = None,
        lane: tuple[int, str] | None = None,
    ) -> bool:
        """Record one delivery event; False when the message is unknown. `lane`: the send's
        lane entry (shard, entry id), acknowledged in the same step."""
        keys = self.keys.verification(verification_id, "")
        if keys is None:
            return False
        update = await self.store.record_delivery(
            keys,
            send=send,
            status=status.value,
            event=event_fragment(status.value, provider, provider_status, error_code),
            lifts_cooldown=status in delivery.RESEND_UNLOCKING,
            retention_ms=self.settings.retention_seconds * 1000,
            lane_entry=lane[1] if lane else None,
        )
        if update.verdict == "unmatched":
            return False
        if (
            update.verdict == "recorded"
            and update.current != update.previous
            and delivery.is_terminal(delivery.DeliveryStatus(update.current))
            and update.submitted_ms is not None
        ):
            metrics.observe_delivery(
                provider,
                update.current,
                update.region,
                (update.now_ms - update.submitted_ms) / 1000,
            )
        return True

    async def record_send_outcome(
        self,
        job: SendJob,
        status: delivery.DeliveryStatus,
        provider_status: str | None,
        error_code: str | None,
        receipt: SubmitReceipt | None,
    ) -> None:
        """What the lane learned from the provider: submitted, rejected or failed."""
        await self.record_delivery(
            provider=self.provider_name,
            verification_id=job.verification_id,
            send=job.send,
            status=status,
            provider_status=provider_status,
            error_code=error_code,
            lane=(job.shard, job.entry) if job.entry else None,
        )
        if receipt is not None and receipt.provider_message_id:
            # Providers that match reports by their own id (Flowstates) need this index.
            remaining_ms = int(max(0.0, job.deadline - time.monotonic()) * 1000)
            await self.store.remember_provider_message(
                self.keys.provider_message(self.provider_name, receipt.provider_message_id),
                job.verification_id,
                job.send,
                remaining_ms + self.settings.retention_seconds * 1000,
            )

    # --- helpers ----------------------------------------------------------------------------

    def _keys_or_404(self, tenant: Tenant, verification_id: str) -> VerificationKeys:
        keys = self.keys.verification(verification_id, tenant.name)
        if keys is None:
            raise VerificationNotFound
        return keys

    def _limited(self, scope: str, wait_ms: int) -> RateLimited:
        metrics.count_rate_limited(scope)
        return RateLimited(retry_after=_seconds(wait_ms), scope=scope)

    def _webhook_url(self) -> str | None:
        if not self.settings.public_url:
            return None
        return f"{self.settings.public_url}/webhooks/{self.provider_name}"

    @staticmethod
    def _locales(tenant: Tenant) -> frozenset[str]:
        return frozenset(message.AVAILABLE_LOCALES) | frozenset(tenant.templates)

    @staticmethod
    def _template(tenant: Tenant, locale: str) -> str:
        return tenant.templates.get(locale) or message.DEFAULT_TEMPLATES.get(
            locale, message.DEFAULT_TEMPLATES["en"]
        )


def _short(value: str | None, limit: int = 64) -> str | None:
    """Provider-supplied text, bounded: it is stored and shown back in delivery events."""
    return value[:limit] if value else None


def _seconds(wait_ms: int) -> int:
    return max(1, -(-int(wait_ms) // 1000))
