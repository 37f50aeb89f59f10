"""OpenAPI documentation of the problem+json errors each route can answer."""

from __future__ import annotations

import msgspec
from litestar.openapi.datastructures import ResponseSpec

_DESCRIPTIONS = {
    400: "invalid_request, invalid_phone_number or invalid_code_format",
    401: "unauthorized: missing or wrong API key",
    403: "destination_not_allowed: country or number type refused by policy",
    404: "verification_not_found: unknown, expired or finished",
    409: "idempotency_conflict: Idempotency-Key reused with another body, or still in progress",
    413: "payload_too_large",
    429: "rate_limited, resend_too_soon or max_sends_reached; see Retry-After",
    503: "service_unavailable: the store cannot be reached; see Retry-After",
}


class Problem(msgspec.Struct, frozen=True):
    """RFC 9457 problem details with the service's stable machine-readable `code`."""

    type: str
    title: str
    status: int
    detail: str
    code: str


def error_responses(*statuses: int) -> dict[int, ResponseSpec]:
    return {
        status: ResponseSpec(
            data_container=Problem,
            description=_DESCRIPTIONS[status],
            media_type="application/problem+json",
        )
        for status in statuses
    }
