"""Submitting one SMS until the provider takes it or its code expires: the one place a provider
call is timed, counted and, when it fails, logged (rate-limited: failures.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import msgspec

from otpservice.errors import ProviderRejected, ProviderUnavailable
from otpservice.providers.failures import PROVIDER_FAILURES, ProviderFailureLog

if TYPE_CHECKING:
    import random
    from collections.abc import Awaitable, Callable

    from otpservice.providers.base import SmsGateway, SmsMessage, SubmitReceipt

# Past this the cap is reached for any sane base/max pair; it keeps 2**n from overflowing a float.
_MAX_EXPONENT = 32


class Backoff(msgspec.Struct, frozen=True, kw_only=True):
    """Full-jitter exponential backoff: a uniform pick in [0, min(max_delay, base * 2**retry)].

    Full jitter spreads the retries of many sends failing together (a provider outage) instead
    of having them return in lockstep.
    """

    base_delay: float = 0.25
    max_delay: float = 5.0

    def delay(self, retry: int, rng: random.Random) -> float:
        """The pause before retry number `retry` (0 for the first retry)."""
        cap = min(self.max_delay, self.base_delay * 2 ** min(retry, _MAX_EXPONENT))
        return rng.uniform(0, cap)


async def submit_until_deadline(
    gateway: SmsGateway,
    message: SmsMessage,
    *,
    deadline: float,
    clock: Callable[[], float],
    sleep: Callable[[float], Awaitable[None]],
    rng: random.Random,
    observe: Callable[[str, str, float], None],
    base_delay: float = 0.25,
    max_delay: float = 5.0,
    failures: ProviderFailureLog = PROVIDER_FAILURES,
) -> SubmitReceipt:
    """Submit `message` until the provider accepts it, refuses it, or the code expires.

    `deadline` is in `clock()` units (monotonic seconds). Each attempt carries the code's
    remaining lifetime as `validity_seconds` and is reported once through
    `observe(provider, outcome, seconds)` with outcome accepted, rejected or unavailable, and
    each failed one to `failures` (the operator's log).
    Raises ProviderRejected at once; ProviderUnavailable(reason="expired") when the code had
    expired before any attempt; the last ProviderUnavailable when retries ran out of time.
    """
    backoff = Backoff(base_delay=base_delay, max_delay=max_delay)
    last_failure: ProviderUnavailable | None = None
    retry = 0
    while True:
        # Less than a whole second left is as good as expired: no SMS arrives and gets typed in
        # that time, and a provider would be told the message is valid for 0 s. Less than the
        # provider can carry (MessageFlow: a minute) is too.
        validity_seconds = int(deadline - clock())
        if validity_seconds < max(1, gateway.min_validity_seconds):
            raise last_failure or ProviderUnavailable("expired")
        attempt = msgspec.structs.replace(message, validity_seconds=validity_seconds)
        started = clock()
        try:
            receipt = await gateway.submit(attempt)
        except ProviderRejected as exc:
            observe(gateway.name, "rejected", clock() - started)
            failures.failed(gateway.name, exc)
            raise
        except ProviderUnavailable as exc:
            # An open circuit made no call: nothing to time, and the breaker has its own gauge.
            if exc.reason != "circuit_open":
                observe(gateway.name, "unavailable", clock() - started)
            failures.failed(gateway.name, exc)
            last_failure = exc
        except Exception:
            # A bug in an adapter: not retried, but the call happened and shows in the metrics.
            observe(gateway.name, "unavailable", clock() - started)
            raise
        else:
            observe(gateway.name, "accepted", clock() - started)
            failures.accepted(gateway.name)
            return receipt

        pause = backoff.delay(retry, rng)
        retry += 1
        if clock() + pause >= deadline:
            # Sleeping to the deadline would only hold a dispatcher to fail the same way.
            raise last_failure
        await sleep(pause)
