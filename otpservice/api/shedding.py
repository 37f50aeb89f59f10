"""Cheap refusals under overload: the hashing routes' `503 overloaded`, answered before routing.

Under overload most answers are sheds (85 % of them at 8x the load the cores serve, see
bench/README.md), so a shed must cost next to nothing: through Litestar (router, guards,
exception handler, problem details) one cost about 0.4 ms of event-loop CPU, more than a whole
`GET /otp/{id}`, and that CPU was taken from the logins being served. `ShedBeforeRouting` sits
outside Litestar, inside RequestMetrics (so a shed is still timed and counted under its route
template): for a POST to a route marked `sheds` (start, verify, resend) from a caller with a valid
API key, while this process's argon2 queue is too long for that operation, it sends a
pre-encoded problem+json with `Retry-After` without reading the body. Everything else, a wrong
key included (`401` stays the answer to a wrong key), goes on to Litestar, whose guard
(api/auth.py shed_when_overloaded) and the use cases' own admission keep the same rule.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

import msgspec
from litestar.enums import ScopeType
from litestar.routes import HTTPRoute

from otpservice import metrics
from otpservice.api.auth import api_key_from_headers, tenant_for_key
from otpservice.api.problems import PROBLEM_TYPE
from otpservice.errors import Overloaded, Unauthorized

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from litestar import Litestar
    from litestar.types import (
        ASGIApp,
        HTTPResponseBodyEvent,
        HTTPResponseStartEvent,
        Receive,
        Scope,
        Send,
    )

    from otpservice.hashing import CodeHasher
    from otpservice.settings import Tenant

_SHED = Overloaded()
BODY = msgspec.json.encode(
    {
        "type": PROBLEM_TYPE + _SHED.code,
        "title": _SHED.title,
        "status": _SHED.status,
        "detail": _SHED.detail,
        "code": _SHED.code,
    }
)
_START: HTTPResponseStartEvent = {
    "type": "http.response.start",
    "status": 503,
    "headers": [
        (b"content-type", b"application/problem+json"),
        (b"content-length", str(len(BODY)).encode()),
        (b"retry-after", str(_SHED.retry_after).encode()),
    ],
}
_BODY: HTTPResponseBodyEvent = {"type": "http.response.body", "body": BODY, "more_body": False}


class ShedRoute(NamedTuple):
    """A route whose handler is marked `opt={"sheds": operation}` (api/otp.py)."""

    segments: tuple[str | None, ...]
    """The path's segments; None where a path parameter takes any one segment."""
    operation: str
    template: str
    """As Litestar puts it in scope['path_template'], for RequestMetrics' label."""

    def matches(self, parts: list[str]) -> bool:
        return len(parts) == len(self.segments) and all(
            part == want if want is not None else part != ""
            for part, want in zip(parts, self.segments, strict=True)
        )


def shed_routes(app: Litestar) -> tuple[ShedRoute, ...]:
    """The POST routes that hash, read from the handlers' own `sheds` marks: the guard
    (api/auth.py shed_when_overloaded) and this wrapper shed the same routes."""
    return tuple(
        ShedRoute(
            segments=tuple(c if isinstance(c, str) else None for c in route.path_components),
            operation=str(handler.opt["sheds"]),
            template=route.path_format,
        )
        for route in app.routes
        if isinstance(route, HTTPRoute)
        for handler in route.route_handlers
        if "sheds" in handler.opt and "POST" in handler.http_methods
    )


class ShedBeforeRouting:
    """ASGI wrapper: answers `503 overloaded` to an authenticated hashing request at once when
    this process's argon2 queue is full; passes every other request on untouched."""

    def __init__(
        self,
        app: ASGIApp,
        hasher: Callable[[], CodeHasher | None],
        tenants: Sequence[Tenant],
        routes: Sequence[ShedRoute],
    ) -> None:
        """`hasher`: this process's CodeHasher, None until the app's lifespan has built it."""
        self.app = app
        self._hasher = hasher
        self._tenants = tenants
        self._routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == ScopeType.HTTP and scope["method"] == "POST":
            route = self._route(scope["path"])
            hasher = self._hasher() if route else None
            if route and hasher and hasher.saturated_for(route.operation) and self._known(scope):
                metrics.count_shed(route.operation)
                scope["path_template"] = route.template  # RequestMetrics' label, as Litestar's
                await send(_START)
                await send(_BODY)
                return
        await self.app(scope, receive, send)

    def _route(self, path: str) -> ShedRoute | None:
        parts = path.split("/")[1:]
        return next((r for r in self._routes if r.matches(parts)), None)

    def _known(self, scope: Scope) -> bool:
        """Whether the request carries a valid API key (constant time, as api/auth.py)."""
        authorization = x_api_key = None
        for name, value in scope["headers"]:
            if name == b"authorization":
                authorization = value.decode("latin-1")
            elif name == b"x-api-key":
                x_api_key = value.decode("latin-1")
        try:
            tenant_for_key(api_key_from_headers(authorization, x_api_key), self._tenants)
        except Unauthorized:
            return False
        return True
