"""Delivery-report webhooks: POST /webhooks/messageflow, /webhooks/flowstates (/sandbox in dev).

Each provider authenticates with its own shared secret, as HTTP Basic credentials (the password,
or the user name with an empty password) or as a bearer token, compared in constant time.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from typing import Annotated, Any, Literal

import msgspec
from litestar import Request, post
from litestar.datastructures import State
from litestar.params import PathParameter
from litestar.status_codes import HTTP_200_OK

from otpservice.api.openapi import errors_for
from otpservice.errors import InvalidRequest, NotFound, Unauthorized
from otpservice.providers.dlr import InvalidReport, parse_reports
from otpservice.services import Services
from otpservice.settings import Settings

MAX_REPORT_BYTES = 256 * 1024

ProviderPath = Annotated[
    Literal["messageflow", "flowstates", "sandbox"],
    PathParameter(description="The provider posting the reports."),
]


class ReportsReceipt(msgspec.Struct, frozen=True):
    recorded: int
    """Reports applied to a known send (duplicates included: they are idempotent)."""
    unmatched: int
    """Reports for messages this service does not know: ignored and counted."""


def presented_secret(authorization: str | None) -> bytes | None:
    scheme, _, value = (authorization or "").partition(" ")
    value = value.strip()
    if scheme.lower() == "bearer" and value:
        return value.encode()
    if scheme.lower() == "basic" and value:
        try:
            user, _, password = base64.b64decode(value, validate=True).partition(b":")
        except (binascii.Error, ValueError):
            return None
        return password or user
    return None


def check_webhook_secret(settings: Settings, provider: str, authorization: str | None) -> None:
    expected = settings.provider.webhook_secrets.get(provider)
    if expected is None:
        # Not configured: as if the route did not exist for this provider.
        raise NotFound(f"No delivery-report webhook is configured for {provider}.")
    presented = presented_secret(authorization)
    if presented is None or not hmac.compare_digest(presented, expected.reveal()):
        raise Unauthorized("Delivery reports need this provider's webhook secret.")


@post(
    "/webhooks/{provider:str}",
    status_code=HTTP_200_OK,
    tags=["webhooks"],
    summary="Delivery reports from an SMS provider",
    description='One report, a list, or {"data": [...]}, as JSON or a form. Unknown messages'
    " are answered 200 (so the provider stops retrying), ignored and counted; a body that is not"
    " a report is 400; without the provider's secret 401 and nothing changes.",
    request_max_body_size=MAX_REPORT_BYTES,
    operation_id="receiveDeliveryReports",
    responses=errors_for(
        "invalid_request",
        "unauthorized",
        "not_found",
        "payload_too_large",
        "service_unavailable",
        "overloaded",
    ),
    security=[{"WebhookBasic": []}, {"WebhookBearer": []}],
)
async def delivery_reports(
    provider: ProviderPath, request: Request[Any, Any, Any], state: State
) -> ReportsReceipt:
    settings: Settings = state.settings
    if provider == "sandbox" and settings.provider.name != "sandbox":
        raise NotFound("The sandbox provider is not in use.")
    check_webhook_secret(settings, provider, request.headers.get("authorization"))
    body = await request.body()
    try:
        reports = parse_reports(
            body, provider=provider, content_type=request.headers.get("content-type")
        )
    except InvalidReport as exc:
        raise InvalidRequest(f"Not a delivery report: {exc}") from None
    services: Services = state.services
    recorded, unmatched = await services.deliveries.ingest_reports(provider, reports)
    return ReportsReceipt(recorded=recorded, unmatched=unmatched)
