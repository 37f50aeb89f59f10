"""OtpError and Litestar's own HTTP errors -> RFC 9457 problem+json, with a stable `code`."""

from __future__ import annotations

import logging
from typing import Any

from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.plugins.problem_details import (
    ProblemDetailsConfig,
    ProblemDetailsException,
    ProblemDetailsPlugin,
)

from otpservice.errors import OtpError, Overloaded, ServiceUnavailable, TooManyRequests

log = logging.getLogger(__name__)

PROBLEM_TYPE = "urn:otpservice:problem:"

_HTTP_CODES = {
    400: ("invalid_request", "The request is malformed"),
    401: ("unauthorized", "Missing or wrong credentials"),
    404: ("not_found", "No such resource"),
    405: ("method_not_allowed", "Method not allowed"),
    413: ("payload_too_large", "The request body is too large"),
    415: ("unsupported_media_type", "Unsupported media type"),
    429: ("rate_limited", "Too many requests"),
    503: ("service_unavailable", "The service is temporarily unavailable"),
}


def problem(
    status: int,
    code: str,
    title: str,
    detail: str,
    *,
    headers: dict[str, str] | None = None,
    extra: dict[str, Any] | None = None,
) -> ProblemDetailsException:
    return ProblemDetailsException(
        status_code=status,
        type_=PROBLEM_TYPE + code,
        title=title,
        detail=detail,
        headers=headers,
        extra={"code": code, **(extra or {})},
    )


def from_otp_error(exc: OtpError) -> ProblemDetailsException:
    headers = None
    if isinstance(exc, TooManyRequests | ServiceUnavailable | Overloaded):
        headers = {"Retry-After": str(exc.retry_after)}
    return problem(exc.status, exc.code, exc.title, exc.detail, headers=headers)


def from_http_exception(exc: HTTPException) -> ProblemDetailsException:
    status = exc.status_code
    code, title = _HTTP_CODES.get(status, ("internal_error", "Internal error"))
    extra: dict[str, Any] | None = None
    detail = exc.detail
    if isinstance(exc, ValidationException) and isinstance(exc.extra, list):
        # msgspec's messages name the field and the expected type; values are never echoed.
        extra = {
            "errors": [
                {"field": item.get("key"), "message": item.get("message")}
                for item in exc.extra
                if isinstance(item, dict)
            ]
        }
        detail = (
            "; ".join(
                f"{e['field']}: {e['message']}" if e["field"] else str(e["message"])
                for e in extra["errors"]
            )
            or "The request body is not valid JSON of the expected shape."
        )
    if status >= 500:
        detail = "An internal error occurred."
    headers = dict(exc.headers) if exc.headers else None
    if status in {429, 503}:
        headers = {**(headers or {}), "Retry-After": (headers or {}).get("Retry-After", "1")}
    return problem(status, code, title, detail, headers=headers, extra=extra)


def internal_error_handler(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    # Log the type and where, not the message: a message could carry request data.
    log.error(
        "unhandled %s on %s %s",
        type(exc).__name__,
        request.method,
        request.scope.get("path_template", "?"),
        exc_info=exc,
    )
    return problem(
        500, "internal_error", "Internal error", "An internal error occurred."
    ).to_response(request)


def problem_details_plugin() -> ProblemDetailsPlugin:
    return ProblemDetailsPlugin(
        ProblemDetailsConfig(
            exception_to_problem_detail_map={
                OtpError: from_otp_error,
                HTTPException: from_http_exception,
            }
        )
    )
