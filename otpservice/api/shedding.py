"""Cheap refusals under overload: the hashing routes' `503 overloaded`, answered before routing.

Under overload most answers are sheds (85 % of them at 8x the load the cores serve, see
bench/README.md), so a shed must cost next to nothing: through Litestar (router, guards,
exception handler, problem details) one cost about 0.4 ms of event-loop CPU, more than a whole
`GET /otp/{id}`, and that CPU was taken from the logins being served. `ShedBeforeRouting` sits
outside Litestar, inside RequestMetrics (so a shed is still timed and counted under its route
template): for a POST to /otp/start, /otp/verify or /otp/{id}/resend from a caller with a valid
API key, while this process's argon2 queue is too long for that operation, it sends a
pre-encoded problem+json with `Retry-After` without reading the body. Everything else, a wrong
key included (`401` stays the answer to a wrong key), goes on to Litestar, whose guard
(api/auth.py shed_when_overloaded) and the use cases' own admission keep the same rule.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import msgspec
from litestar.enums import ScopeType

from otpservice import metrics
from otpservice.api.auth import api_key_from_headers, tenant_for_key
from otpservice.api.problems import PROBLEM_TYPE
from otpservice.errors import Overloaded, Unauthorized

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

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

START, VERIFY, RESEND = "/otp/start", "/otp/verify", "/otp/{verification_id}/resend"
"""The route templates (as Litestar puts them in scope['path_template'])."""

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


def shed_operation(path: str) -> tuple[str, str] | None:
    """(operation, route template) of a POST path that hashes, else None."""
    if path == START:
        return "start", START
    if path == VERIFY:
        return "verify", VERIFY
    head, _, rest = path.removeprefix("/otp/").partition("/")
    if path.startswith("/otp/") and head and rest == "resend":
        return "resend", RESEND
    return None


class ShedBeforeRouting:
    """ASGI wrapper: answers `503 overloaded` to an authenticated hashing request at once when
    this process's argon2 queue is full; passes every other request on untouched."""

    def __init__(
        self,
        app: ASGIApp,
        hasher: Callable[[], CodeHasher | None],
        tenants: Sequence[Tenant],
    ) -> None:
        """`hasher`: this process's CodeHasher, None until the app's lifespan has built it."""
        self.app = app
        self._hasher = hasher
        self._tenants = tenants

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == ScopeType.HTTP and scope["method"] == "POST":
            route = shed_operation(scope["path"])
            hasher = self._hasher() if route else None
            if route and hasher and hasher.saturated_for(route[0]) and self._known(scope):
                operation, template = route
                metrics.count_shed(operation)
                scope["path_template"] = template  # RequestMetrics' label, as Litestar sets it
                await send(_START)
                await send(_BODY)
                return
        await self.app(scope, receive, send)

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
