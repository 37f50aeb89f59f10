"""The fraud guard in the use cases: what it is asked about a send, what its answer means for
the request (a refusal, a flag, nothing), the follow-up of a send it counted, and the tenant's
view of its blocks and safe list. Its rules live in domain/fraud.py and fraud_check.lua."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime

from otpservice import metrics
from otpservice.domain.fraud import is_safe, number_prefix
from otpservice.domain.phone import Destination
from otpservice.errors import FraudSuspected, InvalidRequest, OtpError
from otpservice.ids import Identifiers
from otpservice.settings import Tenant
from otpservice.usecases.ports import FraudBlock, FraudQuery, FraudRepository, FraudVerdict
from otpservice.usecases.refusals import seconds

log = logging.getLogger(__name__)


def wall_ms() -> int:
    return time.time_ns() // 1_000_000


class FraudGuard:
    def __init__(
        self,
        repository: FraudRepository,
        ids: Identifiers,
        clock: Callable[[], int] = wall_ms,
    ) -> None:
        self.repository = repository
        self.ids = ids
        self.clock = clock

    def query(
        self, tenant: Tenant, destination: Destination, end_user_ip: str | None
    ) -> FraudQuery | None:
        """What to ask about a send to `destination` (None when the tenant turned it off).
        Per-IP rules need the end user's own address: a login backend's is everyone's."""
        policy = tenant.policy.fraud
        if policy.mode == "off":
            return None
        return FraudQuery(
            tenant=tenant.name,
            now_ms=self.clock(),
            mode=policy.mode,
            country=destination.region,
            prefix=number_prefix(destination.e164, policy.prefix_digits),
            ip=self.ids.ip_tag(tenant.name, end_user_ip) if end_user_ip else "",
            e164=destination.e164,
            safe=is_safe(policy, destination.e164),
            country_budget=policy.country,
            prefix_budget=policy.prefix,
            ip_budget=policy.ip,
            ip_countries=policy.ip_countries_per_day,
            cooloff_ms=policy.cooloff_seconds * 1000,
            cooloff_max_ms=policy.cooloff_max_seconds * 1000,
            country_cap=policy.country_hourly_caps.get(destination.region, 0),
            cap_action=policy.country_cap_action,
        )

    def judge(self, query: FraudQuery, verdict: FraudVerdict) -> tuple[tuple[str, str], ...]:
        """Raise FraudSuspected for a refusal; the flags to record for a flagged send."""
        if verdict.verdict == "allow":
            return ()
        text = explain(query, verdict)
        if verdict.verdict == "refuse":
            metrics.count_fraud_decision(verdict.rule, "blocked")
            wait = seconds(max(1000, verdict.until_ms - query.now_ms))
            raise FraudSuspected(
                retry_after=wait, detail=f"{text}; retry in {wait} s", rule=verdict.rule
            )
        metrics.count_fraud_decision(verdict.rule, "flagged")
        return ((verdict.rule, text),)

    async def release(self, query: FraudQuery) -> None:
        """The counted send did not happen (refused later, or failed): take it back."""
        await self._settle(query.tenant, approved=False, country=query.country,
                           prefix=query.prefix, ip=query.ip)  # fmt: skip

    async def approved(
        self, tenant: str, country: str, prefix: str, ip: str, *, sends: int
    ) -> None:
        """A verification the guard counted was approved: its `sends` (the first and every
        resend) were verified sends after all; and the blocks of its prefix and IP are lifted."""
        if prefix:
            await self._settle(
                tenant, approved=True, country=country, prefix=prefix, ip=ip, sends=sends
            )

    async def _settle(
        self, tenant: str, *, approved: bool, country: str, prefix: str, ip: str, sends: int = 1
    ) -> None:
        try:
            await self.repository.settle(
                tenant=tenant,
                approved=approved,
                country=country,
                prefix=prefix,
                ip=ip,
                sends=max(1, sends),
                now_ms=self.clock(),
            )
        except OtpError as exc:
            # The request's own outcome stands; the guard's figures miss one send.
            log.warning("fraud guard counters not updated: %s", exc.detail)

    # --- the tenant's view ------------------------------------------------------------------

    async def blocks(self, tenant: Tenant) -> list[FraudBlock]:
        return await self.repository.blocks(tenant.name, self.clock())

    async def lift(self, tenant: Tenant, key: str) -> bool:
        return await self.repository.lift(tenant.name, key, self.clock())

    async def safe_list(
        self, tenant: Tenant, *, add: str | None = None, remove: str | None = None
    ) -> list[str]:
        for item in (add, remove):
            if item is not None and not (
                item[:1] == "+" and item[1:].isascii() and item[1:].isdigit() and len(item) <= 16
            ):
                raise InvalidRequest(
                    "A safe-list entry is '+' and up to 15 digits: +4860 or a number."
                )
        return await self.repository.safe_list(tenant.name, add=add, remove=remove)


def _at(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%H:%MZ")


def spaced_prefix(prefix: str, country: str) -> str:
    """+447700 -> "+44 7700 (GB)": the country code apart, for people."""
    import phonenumbers  # noqa: PLC0415 - only for the wording of a refusal

    code = str(phonenumbers.country_code_for_region(country) or "")
    if code and prefix.startswith("+" + code):
        return f"+{code} {prefix[len(code) + 1 :]} ({country})"
    return prefix


def explain(query: FraudQuery, verdict: FraudVerdict) -> str:
    """The decision in words, with its figures: "GB: 21 unverified sends today, budget 20;
    blocked until 10:35Z". For the tenant's logs; never the number or the IP itself."""
    return wording(verdict, country=query.country, prefix=query.prefix, mode=query.mode)


def describe_block(block: FraudBlock) -> str:
    """A block in force, in the words of the refusal that set it."""
    verdict = FraudVerdict(
        verdict="refuse",
        rule=block.rule,
        figure=block.figure,
        limit=block.limit,
        window="hour" if block.window == "hour" else "day",
        until_ms=block.until_ms,
        level=block.level,
    )
    prefix = block.key[2:] if block.key.startswith("p:") else ""
    return wording(verdict, country=block.country, prefix=prefix, mode="enforce")


def wording(verdict: FraudVerdict, *, country: str, prefix: str, mode: str) -> str:
    period = "this hour" if verdict.window == "hour" else "today"
    ends = (
        "blocked" if verdict.rule in {"prefix_budget", "ip_budget", "ip_countries"} else "refused"
    )
    tail = f"{ends} until {_at(verdict.until_ms)}"
    if verdict.verdict == "flag":
        tail = f"would be {tail} (monitor mode: sent)" if mode == "monitor" else "sent"
    match verdict.rule:
        case "country_cap":
            head = f"{country}: {verdict.figure} sends {period}, cap {verdict.limit}"
        case "country_budget":
            head = f"{country}: {verdict.figure} unverified sends {period}, budget {verdict.limit}"
        case "country_prefix":
            head = (
                f"{country}: {verdict.figure} unverified sends {period}, budget {verdict.limit},"
                f" and {spaced_prefix(prefix, country)} converts less than half of today's codes"
            )
        case "prefix_budget":
            head = (
                f"{spaced_prefix(prefix, country)}: {verdict.figure} unverified sends"
                f" {period}, budget {verdict.limit}"
            )
        case "ip_budget":
            head = (
                f"the end user's IP: {verdict.figure} unverified sends {period},"
                f" budget {verdict.limit}"
            )
        case "ip_countries":
            head = (
                f"the end user's IP asked for codes to {verdict.figure} countries today,"
                f" limit {verdict.limit}"
            )
        case _:
            head = verdict.rule
    if verdict.level:
        tail += f" (block {verdict.level + 1} in a day: the cool-off doubled)"
    return f"{head}; {tail}"
