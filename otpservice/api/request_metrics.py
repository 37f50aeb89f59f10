"""Times every HTTP request and labels it by route template, never by the raw path."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from litestar.enums import ScopeType

from otpservice import metrics

if TYPE_CHECKING:
    from litestar.types import ASGIApp, Message, Receive, Scope, Send


class RequestMetrics:
    """Outermost ASGI wrapper, so 404s, 405s, 413s and 429s are counted with their real status."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            # The router fills path_template on this same scope; an unrouted path gets one label.
            route = str(scope.get("path_template") or "unmatched")
            method = str(scope.get("method", "GET"))
            metrics.observe_request(method, route, status, time.perf_counter() - started)
