"""How late this process's event loop runs: the sign that it, not Redis, is the bottleneck.

Under overload the loop has more ready work than it can run; every await then returns late,
and a Redis reply that arrived in time can still be read after the call's timeout. Such a
timeout says nothing about Redis: StoreClient asks `lagging()` and answers `overloaded`, not
`service_unavailable`, so the store is never reported down while it is healthy.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import time

from otpservice import metrics

_INTERVAL = 0.05
_WINDOW = 2.0


class LoopLag:
    def __init__(self) -> None:
        self._samples: collections.deque[tuple[float, float]] = collections.deque()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._measure(), name="loop-lag")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def recent(self) -> float:
        """The worst lag of the last couple of seconds, in seconds."""
        horizon = time.monotonic() - _WINDOW
        return max((lag for at, lag in self._samples if at >= horizon), default=0.0)

    def lagging(self, threshold: float) -> bool:
        return self.recent() > threshold

    async def _measure(self) -> None:
        last_report = 0.0
        while True:
            asked = time.monotonic()
            await asyncio.sleep(_INTERVAL)
            now = time.monotonic()
            self._samples.append((now, max(0.0, now - asked - _INTERVAL)))
            while self._samples and self._samples[0][0] < now - _WINDOW:
                self._samples.popleft()
            if now - last_report >= 1.0:
                last_report = now
                metrics.set_loop_lag(self.recent())
