"""Verification policy: the numbers a tenant can tune, and the arithmetic on them."""

from __future__ import annotations

import msgspec

from otpservice.domain.fraud import FraudPolicy

# NIST SP 800-63B 5.2.2: no more than 100 consecutive failed attempts on one account.
NIST_MAX_FAILED_ATTEMPTS = 100

DEFAULT_BLOCKED_NUMBER_TYPES: tuple[str, ...] = (
    # Landlines cannot receive SMS, and pumping rings use them: FIXED_LINE_OR_MOBILE (as for US
    # numbers, whose type the numbering plan cannot tell) stays allowed.
    "FIXED_LINE",
    "PREMIUM_RATE",
    "SHARED_COST",
    "TOLL_FREE",
    "UAN",
    "PAGER",
    "VOICEMAIL",
    "VOIP",
)


class Limits(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Abuse limits, all checked before any argon2 work."""

    sends_per_number_per_hour: int = 5
    sends_per_number_per_day: int = 10
    starts_per_ip_per_minute: int = 120
    failed_checks_per_number: int = 20
    failed_checks_window_seconds: int = 24 * 3600


class Policy(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """How codes are made, how long they live and how often they may be tried and sent."""

    code_length: int = 6
    code_ttl_seconds: int = 600
    max_attempts: int = 5
    max_sends: int = 5
    resend_cooldown_seconds: int = 30
    resend_cooldown_max_seconds: int = 900
    accept_previous_code: bool = False
    allowed_countries: tuple[str, ...] = ()
    """ISO 3166 alpha-2 regions a code may be sent to; empty means every region."""
    blocked_number_types: tuple[str, ...] = DEFAULT_BLOCKED_NUMBER_TYPES
    """phonenumbers PhoneNumberType names refused with destination_not_allowed."""
    limits: Limits = Limits()
    fraud: FraudPolicy = FraudPolicy()

    def __post_init__(self) -> None:
        problems = list(_policy_problems(self))
        if problems:
            raise ValueError("; ".join(problems))


def _policy_problems(policy: Policy) -> list[str]:
    out: list[str] = []
    if not 4 <= policy.code_length <= 10:
        out.append("code_length must be between 4 and 10")
    if policy.code_ttl_seconds < 1 or policy.code_ttl_seconds > 24 * 3600:
        out.append("code_ttl_seconds must be between 1 and 86400")
    if not 1 <= policy.max_attempts <= 20:
        out.append("max_attempts must be between 1 and 20")
    if not 1 <= policy.max_sends <= 20:
        out.append("max_sends must be between 1 and 20")
    if policy.resend_cooldown_seconds < 0:
        out.append("resend_cooldown_seconds must not be negative")
    if policy.resend_cooldown_max_seconds < policy.resend_cooldown_seconds:
        out.append("resend_cooldown_max_seconds must be >= resend_cooldown_seconds")
    limits = policy.limits
    if not 1 <= limits.failed_checks_per_number <= NIST_MAX_FAILED_ATTEMPTS:
        out.append(
            f"limits.failed_checks_per_number must be between 1 and {NIST_MAX_FAILED_ATTEMPTS}"
            " (NIST SP 800-63B)"
        )
    positive = (
        "sends_per_number_per_hour",
        "sends_per_number_per_day",
        "starts_per_ip_per_minute",
        "failed_checks_window_seconds",
    )
    out.extend(
        f"limits.{name} must be at least 1" for name in positive if getattr(limits, name) < 1
    )
    return out


def resend_cooldown(policy: Policy, sends_so_far: int) -> int:
    """Seconds to wait after the `sends_so_far`-th send: base, then doubling, capped.

    With the defaults: 30 s after the first send, 60 s after the second, 120 s after the third.
    """
    if sends_so_far < 1:
        return 0
    # Cap the exponent so a large max_sends cannot build a huge integer.
    cooldown: int = policy.resend_cooldown_seconds * (1 << min(sends_so_far - 1, 30))
    return min(cooldown, policy.resend_cooldown_max_seconds)


def cooldown_schedule_ms(policy: Policy) -> tuple[int, ...]:
    """The cooldown after the 1st, 2nd, ... `max_sends`-th send, in milliseconds: the store
    applies it as it is (the one place the cooldown rule lives is `resend_cooldown`)."""
    return tuple(resend_cooldown(policy, sends) * 1000 for sends in range(1, policy.max_sends + 1))


def ttl_minutes(policy: Policy) -> int:
    """The code's lifetime in whole minutes as the SMS text states it (at least 1)."""
    return max(1, policy.code_ttl_seconds // 60)
