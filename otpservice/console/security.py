"""The console's HTTP hardening: security headers on every response under /console (error
pages and redirects too), forms only as application/x-www-form-urlencoded, and Litestar's CSRF
check made safe against tokens that are not ASCII text."""

from __future__ import annotations

import hmac
from typing import Any

from litestar.config.csrf import CSRFConfig
from litestar.enums import ScopeType
from litestar.middleware.csrf import CSRFMiddleware
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from otpservice.settings import Settings

PREFIX = "/console"
FORM = b"application/x-www-form-urlencoded"
CSP = (
    "default-src 'self'; script-src 'none'; style-src 'self'; img-src 'self' data:;"
    " form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
)
_REPLACED = {b"cache-control", b"content-security-policy", b"x-frame-options"}


def security_headers(production: bool) -> list[tuple[bytes, bytes]]:
    headers = [
        (b"content-security-policy", CSP.encode()),
        (b"x-content-type-options", b"nosniff"),
        (b"referrer-policy", b"no-referrer"),
        (b"cache-control", b"no-store"),
        (b"x-frame-options", b"DENY"),
        (b"cross-origin-opener-policy", b"same-origin"),
        (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
    ]
    if production:
        headers.append((b"strict-transport-security", b"max-age=31536000"))
    return headers


class ConsoleGate:
    """Wraps the whole app; acts only on paths under /console."""

    def __init__(self, app: ASGIApp, *, production: bool) -> None:
        self.app = app
        self.headers = security_headers(production)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "") if scope["type"] == ScopeType.HTTP else ""
        if not (path == PREFIX or path.startswith(PREFIX + "/")):
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                kept = [h for h in message.get("headers", []) if h[0].lower() not in _REPLACED]
                message["headers"] = [*kept, *self.headers]
            await send(message)

        method = scope.get("method", "GET")
        if method not in {"GET", "HEAD", "POST"}:
            await _plain(send_with_headers, 405, "Method not allowed.", allow=b"GET, POST")
            return
        if method == "POST" and _content_type(scope) != FORM:
            await _plain(send_with_headers, 415, "The console takes HTML forms only.")
            return
        await self.app(scope, receive, send_with_headers)


def _content_type(scope: Scope) -> bytes:
    for name, value in scope.get("headers", []):
        if name.lower() == b"content-type":
            return bytes(value).partition(b";")[0].strip().lower()
    return b""


async def _plain(send: Send, status: int, text: str, *, allow: bytes | None = None) -> None:
    body = text.encode()
    headers = [
        (b"content-type", b"text/plain; charset=utf-8"),
        (b"content-length", b"%d" % len(body)),
    ]
    if allow:
        headers.append((b"allow", allow))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})


class ConsoleCSRF(CSRFMiddleware):
    """Litestar's double-submit check, but a token that is not ASCII text (a file field, an
    accented letter) is a mismatch, not a TypeError from hmac.compare_digest."""

    def _csrf_tokens_match(self, request_csrf_token: Any, cookie_csrf_token: Any) -> bool:
        if not all(
            isinstance(token, str) and token.isascii()
            for token in (request_csrf_token, cookie_csrf_token)
        ):
            return False
        return super()._csrf_tokens_match(request_csrf_token, cookie_csrf_token)


def csrf_config(settings: Settings) -> CSRFConfig:
    # Every worker (and replica) derives the same secret from the pepper.
    secret = hmac.digest(settings.pepper.reveal(), b"otpservice/console-csrf/v1", "sha256")
    return CSRFConfig(
        secret=secret.hex(),
        cookie_name="otp_console_csrf",
        cookie_path=PREFIX,
        cookie_secure=settings.production,
        cookie_httponly=True,
        cookie_samesite="strict",
        header_name="x-csrftoken",
    )


def session_cookie_name(settings: Settings) -> str:
    # __Secure-: a browser accepts it only over HTTPS with Secure, so nothing can plant it.
    return "__Secure-otp_console" if settings.production else "otp_console"
