"""The SMS a send carries: its text from the tenant's template, and the message the priority lane
submits. Used for a first send and to rebuild a send another process left unfinished."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping

from otpservice.domain import message
from otpservice.domain.policy import ttl_minutes
from otpservice.ids import VerificationRef, message_ref
from otpservice.lane import ClaimedSend, Send, SendJob
from otpservice.providers.base import SmsMessage
from otpservice.sealing import CodeSealer
from otpservice.settings import Tenant

log = logging.getLogger(__name__)


def locales(tenant: Tenant) -> frozenset[str]:
    """The locales the tenant can send: the built-in ones and its own."""
    return frozenset(message.AVAILABLE_LOCALES) | frozenset(tenant.templates)


def template(tenant: Tenant, locale: str) -> str:
    return tenant.templates.get(locale) or message.DEFAULT_TEMPLATES.get(
        locale, message.DEFAULT_TEMPLATES["en"]
    )


class SmsComposer:
    """`webhook_url`: where the provider posts delivery reports (None: the service has no public
    URL, so the provider is not told)."""

    def __init__(
        self, tenants: Mapping[str, Tenant], sealer: CodeSealer, webhook_url: str | None
    ) -> None:
        self._tenants = tenants
        self._sealer = sealer
        self._webhook_url = webhook_url

    def job(
        self,
        tenant: Tenant,
        send: Send,
        *,
        to: str,
        code: str,
        locale: str,
        app_hash: str,
        remaining: float,
    ) -> SendJob:
        """The job the lane submits: `remaining` seconds of the code's life are left."""
        text = message.render_sms(
            template(tenant, locale),
            code=code,
            app=tenant.app_name,
            minutes=ttl_minutes(tenant.policy),
            webotp_domain=tenant.webotp_domain,
            app_hash=app_hash or None,
        )
        sms = SmsMessage(
            to=to,
            text=text,
            sender=tenant.sender,
            external_id=message_ref(send.ref, send.number),
            validity_seconds=int(remaining),
            webhook_url=self._webhook_url,
        )
        return SendJob(send=send, message=sms)

    def seal(self, code: str, ref: VerificationRef) -> bytes:
        return self._sealer.seal(code, ref.text)

    def rebuild(self, claimed: ClaimedSend) -> SendJob | None:
        """A send another process left unfinished, ready to be submitted by this one; None when
        that cannot be done (the tenant left the configuration, or the pepper changed)."""
        tenant = self._tenants.get(claimed.tenant)
        if tenant is not None and claimed.to in tenant.test_numbers:
            # Its process stopped between storing the code and recording it delivered (no SMS):
            # a test number is never sent an SMS, not even by another process.
            log.warning("a test number's lane entry was claimed; it is not sent")
            return None
        code = self._sealer.open(claimed.sealed, claimed.ref.text)
        if tenant is None or code is None:
            log.warning("a claimed lane send cannot be rebuilt (tenant or pepper changed)")
            return None
        remaining = max(0.0, (claimed.expires_ms - claimed.now_ms) / 1000)
        send = Send(
            ref=claimed.ref,
            number=claimed.send,
            region=claimed.region,
            deadline=time.monotonic() + remaining,
            shard=claimed.shard,
            entry=claimed.entry,
            redelivered=True,
        )
        return self.job(
            tenant,
            send,
            to=claimed.to,
            code=code,
            locale=claimed.locale or tenant.default_locale,
            app_hash=claimed.app_hash,
            remaining=remaining,
        )
