"""A circuit breaker per provider: after a run of failures stop calling it, then probe.

While a provider is down, every dispatcher hammering it would only add timeouts to each send;
with the circuit open, sends fail fast and wait in their backoff until one probe succeeds.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable

from otpservice import metrics
from otpservice.errors import ProviderRejected, ProviderUnavailable
from otpservice.providers.base import SmsGateway, SmsMessage, SubmitReceipt

CIRCUIT_OPEN = "circuit_open"


class CircuitState(enum.IntEnum):
    """The values of the otp_provider_circuit_state gauge."""

    CLOSED = 0
    HALF_OPEN = 1
    OPEN = 2


class CircuitBreaker:
    """Wraps one gateway. Opens after `failure_threshold` consecutive unavailable answers;
    after `reset_after` seconds lets one probe through (half-open): success closes it,
    failure opens it again. A rejection is an answer, so it counts as the provider being up."""

    def __init__(
        self,
        gateway: SmsGateway,
        *,
        failure_threshold: int = 5,
        reset_after: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.gateway = gateway
        self.name = gateway.name
        self.min_validity_seconds = gateway.min_validity_seconds
        self._threshold = failure_threshold
        self._reset_after = reset_after
        self._clock = clock
        self._failures = 0
        self._opened_at: float | None = None
        self._probing = False
        metrics.set_circuit_state(self.name, CircuitState.CLOSED)

    @property
    def state(self) -> CircuitState:
        if self._opened_at is None:
            return CircuitState.CLOSED
        if self._probing or self._clock() - self._opened_at >= self._reset_after:
            return CircuitState.HALF_OPEN
        return CircuitState.OPEN

    async def submit(self, message: SmsMessage) -> SubmitReceipt:
        state = self.state
        if state is CircuitState.OPEN or (state is CircuitState.HALF_OPEN and self._probing):
            raise ProviderUnavailable(CIRCUIT_OPEN)
        probe = state is CircuitState.HALF_OPEN
        if probe:
            self._probing = True
            metrics.set_circuit_state(self.name, CircuitState.HALF_OPEN)
        try:
            receipt = await self.gateway.submit(message)
        except ProviderRejected:
            self._closed()
            raise
        except ProviderUnavailable:
            self._failed(probe=probe)
            raise
        except BaseException:
            if probe:
                self._probing = False
            raise
        self._closed()
        return receipt

    def _closed(self) -> None:
        if self._opened_at is not None or self._failures:
            self._failures = 0
            self._opened_at = None
            self._probing = False
            metrics.set_circuit_state(self.name, CircuitState.CLOSED)

    def _failed(self, *, probe: bool) -> None:
        self._failures += 1
        self._probing = False
        if probe or self._failures >= self._threshold:
            self._opened_at = self._clock()
            metrics.set_circuit_state(self.name, CircuitState.OPEN)

    async def aclose(self) -> None:
        await self.gateway.aclose()
