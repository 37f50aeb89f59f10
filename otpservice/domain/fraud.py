"""The fraud guard's policy: what a tenant tunes to stop SMS pumping, and the number prefixes
the guard counts by. No I/O: store/lua/fraud_check.lua applies the budgets atomically.

SMS pumping sends codes to numbers whose operator shares the SMS revenue with the attacker,
who never enters a code. So the guard budgets *unverified* sends (codes sent but not entered),
per destination country, per number prefix and per end-user IP, in hour and day windows. A
budget grows with the verified traffic the tenant really has there:

    day budget  = max(floor_day,  ratio x best verified day of the last 14 days,
                                  ratio x verified in the last 24 hours)
    hour budget = max(floor_hour, day budget / 6,
                                  ratio x verified in this hour or the last, the larger)

A new country or prefix starts small; a busy one is never throttled by its own users. A
prefix or IP past its budget is blocked for a cool-off that doubles at each new block (5 min up
to 12 h) and is lifted early by an approval there. A country is never blocked: past its budget
it refuses its sends, but a country with verified history refuses only sends to prefixes that
convert less than half of today's codes until it is past twice its budget, so that an attack
on a few ranges of a country the tenant serves does not lock that country's users out.
bench/pumping.py measures all of this on simulated days of traffic and attacks.
"""

from __future__ import annotations

from typing import Literal

import msgspec
import phonenumbers

FraudMode = Literal["enforce", "monitor", "off"]
CapAction = Literal["block", "alert"]


class Budget(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The unverified sends a scope may have: floors, and the share of its verified traffic."""

    floor_day: int
    floor_hour: int
    ratio: float = 0.2


class FraudPolicy(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    mode: FraudMode = "enforce"
    """enforce: refuse (429 fraud_suspected); monitor: decide, count and record, but send."""
    country: Budget = Budget(floor_day=20, floor_hour=3)
    prefix: Budget = Budget(floor_day=10, floor_hour=3)
    ip: Budget = Budget(floor_day=10, floor_hour=3, ratio=0.5)
    """Applied only when the end user's IP is known (signals.ip, or a trusted proxy). Its
    ratio is higher than the others': an IP with much verified traffic is a carrier or office
    NAT shared by many users (bench/README.md, the pumping simulator, has the figures), while
    an attacker's fresh IP has no verified traffic and keeps the floors."""
    prefix_digits: int = 4
    """A prefix is the country code and this many first digits of the national number."""
    ip_countries_per_day: int = 3
    """An IP that asks for codes to more countries than this in a day is blocked."""
    cooloff_seconds: int = 300
    """The first block of a prefix or IP; each new block within a day doubles it."""
    cooloff_max_seconds: int = 12 * 3600
    country_hourly_caps: dict[str, int] = msgspec.field(default_factory=dict)
    """ISO region -> the most sends an hour, whatever the history (e.g. {"GB": 100})."""
    country_cap_action: CapAction = "block"
    """block: refuse past the cap; alert: count and let through."""
    safe_numbers: tuple[str, ...] = ()
    """E.164 numbers no rule blocks (the tenant's test and staff numbers)."""
    safe_prefixes: tuple[str, ...] = ()
    """E.164 prefixes ("+4860") no rule blocks."""

    def __post_init__(self) -> None:
        problems = list(_problems(self))
        if problems:
            raise ValueError("; ".join(problems))


def _problems(policy: FraudPolicy) -> list[str]:
    out = []
    for name in ("country", "prefix", "ip"):
        budget: Budget = getattr(policy, name)
        if budget.floor_day < 1 or budget.floor_hour < 1:
            out.append(f"fraud.{name}: floors must be at least 1")
        if not 0 <= budget.ratio <= 10:
            out.append(f"fraud.{name}.ratio must be between 0 and 10")
    if not 1 <= policy.prefix_digits <= 8:
        out.append("fraud.prefix_digits must be between 1 and 8")
    if policy.ip_countries_per_day < 1:
        out.append("fraud.ip_countries_per_day must be at least 1")
    if not 1 <= policy.cooloff_seconds <= policy.cooloff_max_seconds:
        out.append("fraud.cooloff_seconds must be at least 1 and at most cooloff_max_seconds")
    bad = [r for r in policy.country_hourly_caps if len(r) != 2 or not r.isupper()]
    if bad:
        out.append(f"fraud.country_hourly_caps: use ISO 3166 alpha-2 codes; got {bad}")
    if any(c < 1 for c in policy.country_hourly_caps.values()):
        out.append("fraud.country_hourly_caps: every cap must be at least 1")
    bad = [n for n in (*policy.safe_numbers, *policy.safe_prefixes) if not _e164ish(n)]
    if bad:
        out.append(f"fraud.safe_numbers and safe_prefixes are '+' and digits; got {bad}")
    return out


def _e164ish(text: str) -> bool:
    return text[:1] == "+" and text[1:].isascii() and text[1:].isdigit() and len(text) <= 16


def number_prefix(e164: str, digits: int) -> str:
    """The country code and the first `digits` digits of the national number: +44 7700..."""
    parsed = phonenumbers.parse(e164, None)
    national = phonenumbers.national_significant_number(parsed)
    return f"+{parsed.country_code}{national[:digits]}"


def is_safe(policy: FraudPolicy, e164: str) -> bool:
    """On the tenant's safe list (from its configuration): no rule blocks it."""
    return e164 in policy.safe_numbers or any(e164.startswith(p) for p in policy.safe_prefixes)
