"""Provider failures and rejections in the log, for the operator: at WARNING, at most one line
per provider per interval (10 s) with how many more were held back, and a line when the
provider takes SMS again. A provider down for a minute writes a handful of lines, not one per
attempt.

A line names the provider, what went wrong (http_503, timeout, circuit_open, the provider's
error code and words) and nothing of the SMS: never its number, text or code. The provider's
words are already redacted where they enter (base.error_details: SMS text and every run of four
or more digits removed), biased towards over-hiding.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from otpservice.errors import ProviderError, ProviderRejected

log = logging.getLogger("otpservice.providers")

DEFAULT_INTERVAL_SECONDS = 10.0


class _Window:
    """One provider's log since its last line."""

    __slots__ = ("held_back", "last_line", "outage_told", "unavailable")

    def __init__(self) -> None:
        self.last_line = float("-inf")
        self.held_back = 0
        """Failed attempts not logged since the last line."""
        self.unavailable = 0
        """Unavailable attempts since the provider last took an SMS."""
        self.outage_told = False
        """This outage has had its line: its end gets one too."""


class ProviderFailureLog:
    """At most one line per provider per `interval` about failures, and one when an outage
    that had its line ends: a flapping provider writes two lines per interval at most."""

    def __init__(
        self,
        *,
        interval: float = DEFAULT_INTERVAL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        logger: logging.Logger = log,
    ) -> None:
        self._interval = interval
        self._clock = clock
        self._log = logger
        self._windows: dict[str, _Window] = {}

    def failed(self, provider: str, error: ProviderError) -> None:
        """One attempt that the provider refused for good or could not take."""
        now = self._clock()
        window = self._windows.setdefault(provider, _Window())
        unavailable = not isinstance(error, ProviderRejected)
        window.unavailable += unavailable
        if now - window.last_line < self._interval:
            window.held_back += 1
            return
        held_back, window.held_back, window.last_line = window.held_back, 0, now
        window.outage_told = window.outage_told or unavailable
        kind = "is unavailable" if unavailable else "rejected an SMS"
        self._log.warning(
            "provider %s %s: %s%s", provider, kind, _describe(error), _held_back(held_back)
        )

    def accepted(self, provider: str) -> None:
        """The provider took an SMS."""
        window = self._windows.get(provider)
        if window is None:
            return
        now = self._clock()
        if window.outage_told:
            self._log.warning(
                "provider %s accepts SMS again after %d unavailable attempts%s",
                provider,
                window.unavailable,
                _held_back(window.held_back),
            )
            window.last_line, window.held_back = now, 0
        elif now - window.last_line >= self._interval:
            del self._windows[provider]
            if window.held_back:
                self._log.warning(
                    "provider %s accepts SMS; %d failed attempts since the last line were not"
                    " logged one by one",
                    provider,
                    window.held_back,
                )
            return
        # An outage too short for a line of its own is counted in the next line.
        window.unavailable, window.outage_told = 0, False


def _held_back(count: int) -> str:
    if not count:
        return ""
    return f" ({count} more failed attempts since the last line, not logged one by one)"


def _describe(error: ProviderError) -> str:
    parts = [error.reason]
    if error.code:
        parts.append(f"code {error.code}")
    if error.message:
        parts.append(repr(error.message))
    return ", ".join(parts)


PROVIDER_FAILURES = ProviderFailureLog()
"""The process's one log of provider failures (the lane's retry loop reports to it)."""
