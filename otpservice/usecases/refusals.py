"""Turning the store's refusals into the client's errors, each counted in otp_rate_limited_total.

Each refusal's `detail` names the limit's scope (the label of otp_rate_limited_total and the
README's table) and the seconds to wait, as Retry-After does."""

from __future__ import annotations

from otpservice import metrics
from otpservice.errors import MaxSendsReached, RateLimited, ResendTooSoon, VerificationNotFound


def seconds(wait_ms: int) -> int:
    """Whole seconds to wait, rounded up, at least 1 (Retry-After)."""
    return max(1, -(-int(wait_ms) // 1000))


_SCOPES = {
    "ip": "starts from this client IP address in a minute",
    "number_hour": "codes sent to this number in an hour",
    "number_day": "codes sent to this number in a day",
    "failed_checks": "failed checks of this number's codes",
}


def rate_limited(scope: str, wait_ms: int) -> RateLimited:
    metrics.count_rate_limited(scope)
    wait = seconds(wait_ms)
    what = _SCOPES.get(scope, "requests")
    return RateLimited(
        retry_after=wait,
        scope=scope,
        detail=f"Limit '{scope}' reached: too many {what}. Retry in {wait} s.",
    )


def raise_for_send_verdict(verdict: str, wait_ms: int) -> None:
    """Raise what a send pre-check's or commit's refusal means; return when it is none."""
    if verdict in {"new", "resend", "ok", "conflict"}:
        return
    if verdict == "not_found":
        raise VerificationNotFound
    if verdict == "max_sends":
        metrics.count_rate_limited("max_sends")
        wait = seconds(wait_ms)
        raise MaxSendsReached(
            retry_after=wait,
            detail=f"Limit 'max_sends' reached: this verification has used all its sends; a new"
            f" one can start when it expires, in {wait} s.",
        )
    if verdict == "too_soon":
        metrics.count_rate_limited("resend_cooldown")
        wait = seconds(wait_ms)
        raise ResendTooSoon(
            retry_after=wait,
            detail=f"Limit 'resend_cooldown' reached: the next code can be sent in {wait} s.",
        )
    raise rate_limited({"hour": "number_hour", "day": "number_day"}[verdict], wait_ms)
