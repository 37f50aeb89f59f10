"""Checking a code: approves a verification at most once, even under concurrent checks.

The store takes an attempt (and a failed check of the number) before any hashing, so no more
argon2 runs than there are attempts; the code is hashed once with the verification's salt and
compared, in constant time, with every stored digest; the store then approves or counts.
The approval of a test number's verification (fixed_codes.py) is no conversion: it is left out
of otp_verifications_approved_total and otp_time_to_verify_seconds.
"""

from __future__ import annotations

import time

from otpservice import metrics
from otpservice.domain.codes import check_code_format
from otpservice.domain.phone import parse_e164
from otpservice.errors import InvalidRequest, VerificationNotFound
from otpservice.hashing import matching_digest
from otpservice.ids import Identifiers, VerificationRef
from otpservice.settings import Tenant
from otpservice.usecases.fixed_codes import FixedCodes
from otpservice.usecases.fraud import FraudGuard
from otpservice.usecases.ports import CheckRepository, CodeHashing
from otpservice.usecases.refusals import rate_limited
from otpservice.views import CheckView


class CheckCodes:
    def __init__(
        self, repository: CheckRepository, hasher: CodeHashing, ids: Identifiers, guard: FraudGuard
    ) -> None:
        self.repository = repository
        self.hasher = hasher
        self.ids = ids
        self.guard = guard
        self.fixed_codes = FixedCodes(ids)

    async def verify(
        self, tenant: Tenant, *, verification_id: str | None, to: str | None, code: str
    ) -> CheckView:
        """Check `code` against the verification `verification_id`, or the open one of `to`."""
        if (verification_id is None) == (to is None):
            raise InvalidRequest("Give exactly one of `id` and `to`.")
        check_code_format(code, tenant.policy.code_length)
        if verification_id is not None:
            ref = self.ids.ref_for_id(verification_id, tenant.name)
            if ref is None:
                metrics.count_check("not_found")
                raise VerificationNotFound
            tag, rand = ref.tag, ref.rand
        else:
            assert to is not None
            tag, rand = self.ids.number_tag(tenant.name, parse_e164(to).e164), None
        with self.hasher.admit("verify"):
            return await self._check(tenant, tag, rand, code)

    async def _check(self, tenant: Tenant, tag: str, rand: str | None, code: str) -> CheckView:
        limits = tenant.policy.limits
        begun = await self.repository.check_begin(
            tenant=tenant.name,
            tag=tag,
            rand=rand,
            failed_limit=limits.failed_checks_per_number,
            failed_window_ms=limits.failed_checks_window_seconds * 1000,
        )
        if begun.verdict == "rate_limited":
            raise rate_limited("failed_checks", begun.wait_ms)
        if begun.verdict == "not_found":
            metrics.count_check("not_found")
            raise VerificationNotFound
        ref = VerificationRef(tag, begun.rand)
        candidate = await self.hasher.hash_code_async(code, begun.salt)
        found = matching_digest(candidate, list(begun.digests))
        # Digests are the current code's, then the previous send's: index 0 is send `sends`.
        matched_send = begun.sends - found if found >= 0 else 0
        finished = await self.repository.check_finish(ref, matched_send=matched_send)
        public_id = self.ids.public_id(ref, tenant.name)
        if finished.verdict == "not_found":
            metrics.count_check("not_found")
            raise VerificationNotFound
        if finished.verdict == "approved":
            if self.fixed_codes.for_tag(tenant, tag) is None:
                await self.guard.approved(
                    tenant.name,
                    finished.region,
                    finished.fraud_prefix,
                    finished.fraud_ip,
                    sends=begun.sends,
                )
                metrics.count_approved(finished.region, time.time() - finished.created_ms / 1000)
            metrics.count_check("approved")
            return CheckView(
                id=public_id, status="approved", valid=True, attempts_left=finished.attempts_left
            )
        metrics.count_check("failed" if finished.verdict == "failed" else "wrong_code")
        return CheckView(
            id=public_id,
            status=finished.verdict,
            valid=False,
            attempts_left=finished.attempts_left,
        )
