"""Reading and cancelling a verification. Unknown, expired-and-gone and other tenants'
verifications all answer VerificationNotFound, with the same body."""

from __future__ import annotations

from otpservice.errors import VerificationNotFound
from otpservice.ids import Identifiers, VerificationRef
from otpservice.settings import Tenant
from otpservice.usecases.ports import VerificationReader
from otpservice.views import VerificationView, verification_view


class ManageVerifications:
    def __init__(self, repository: VerificationReader, ids: Identifiers) -> None:
        self.repository = repository
        self.ids = ids

    async def read(self, tenant: Tenant, verification_id: str) -> VerificationView:
        ref = self._ref(tenant, verification_id)
        snapshot = await self.repository.read(ref, tenant=tenant.name)
        if snapshot is None:
            raise VerificationNotFound
        return verification_view(verification_id, snapshot.record, snapshot.events, snapshot.now_ms)

    async def cancel(self, tenant: Tenant, verification_id: str) -> VerificationView:
        ref = self._ref(tenant, verification_id)
        if not await self.repository.cancel(ref, tenant=tenant.name):
            raise VerificationNotFound
        return await self.read(tenant, verification_id)

    def _ref(self, tenant: Tenant, verification_id: str) -> VerificationRef:
        ref = self.ids.ref_for_id(verification_id, tenant.name)
        if ref is None:
            raise VerificationNotFound
        return ref
