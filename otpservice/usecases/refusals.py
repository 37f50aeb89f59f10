"""Turning the store's refusals into the client's errors, each counted in otp_rate_limited_total."""

from __future__ import annotations

from otpservice import metrics
from otpservice.errors import MaxSendsReached, RateLimited, ResendTooSoon, VerificationNotFound


def seconds(wait_ms: int) -> int:
    """Whole seconds to wait, rounded up, at least 1 (Retry-After)."""
    return max(1, -(-int(wait_ms) // 1000))


def rate_limited(scope: str, wait_ms: int) -> RateLimited:
    metrics.count_rate_limited(scope)
    return RateLimited(retry_after=seconds(wait_ms), scope=scope)


def raise_for_send_verdict(verdict: str, wait_ms: int) -> None:
    """Raise what a send pre-check's or commit's refusal means; return when it is none."""
    if verdict in {"new", "resend", "ok", "conflict"}:
        return
    if verdict == "not_found":
        raise VerificationNotFound
    if verdict == "max_sends":
        metrics.count_rate_limited("max_sends")
        raise MaxSendsReached(
            retry_after=seconds(wait_ms),
            detail="This verification has used all its sends; a new one can start when it expires.",
        )
    if verdict == "too_soon":
        metrics.count_rate_limited("resend_cooldown")
        raise ResendTooSoon(retry_after=seconds(wait_ms))
    raise rate_limited({"hour": "number_hour", "day": "number_day"}[verdict], wait_ms)
