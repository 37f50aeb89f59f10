"""A tenant's test numbers (`test_numbers` in the TOML): each has a fixed code, gets no SMS and
counts for no conversion figure. The use cases meet them by number at a start and by the
number's tag (ids.py) at a resend or a check by id."""

from __future__ import annotations

from otpservice.ids import Identifiers
from otpservice.settings import Tenant

TEST_NUMBER_PROVIDER = "test_number"
"""The `provider` of a test number's delivery events: no provider was asked."""
NO_SMS_SENT = "no_sms_sent"
"""The `provider_status` of the `delivered` event that ends a test number's send."""
TEST_NUMBER_SENDS_PER_WINDOW = 1_000_000
"""A test number's sends per hour and per day: nothing is sent, so nothing to pace or pay."""


class FixedCodes:
    def __init__(self, ids: Identifiers) -> None:
        self._ids = ids
        self._by_tag: dict[str, dict[str, str]] = {}
        """tenant -> {tag of a test number: the number}, computed at first use."""

    def for_number(self, tenant: Tenant, e164: str) -> str | None:
        """The fixed code of `e164`, None when it is not one of the tenant's test numbers."""
        code = tenant.test_numbers.get(e164)
        return code.reveal().decode() if code is not None else None

    def for_tag(self, tenant: Tenant, tag: str) -> str | None:
        """The fixed code of the number whose tag is `tag` (a resend or a check by id)."""
        if not tenant.test_numbers:
            return None
        numbers = self._by_tag.get(tenant.name)
        if numbers is None:
            numbers = {
                self._ids.number_tag(tenant.name, e164): e164 for e164 in tenant.test_numbers
            }
            self._by_tag[tenant.name] = numbers
        e164 = numbers.get(tag)
        return self.for_number(tenant, e164) if e164 is not None else None
