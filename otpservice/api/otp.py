"""The client API: /otp/start, /otp/verify, /otp/{id}/resend, /otp/{id}/cancel, GET /otp/{id}."""

from __future__ import annotations

import ipaddress
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.openapi.spec import Example
from litestar.params import HeaderParameter, JSONBody, Parameter
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED

from otpservice.api.auth import authenticate, authenticated_tenant, shed_when_overloaded
from otpservice.api.bodies import StrictJSONRequest
from otpservice.api.openapi import errors_for
from otpservice.api.schemas import (
    CheckResult,
    Signals,
    StartRequest,
    Verification,
    VerifyRequest,
    check_out,
    verification_out,
)
from otpservice.errors import InvalidRequest
from otpservice.services import Services
from otpservice.settings import Tenant

IdempotencyKey = Annotated[
    str | None,
    HeaderParameter(
        name="Idempotency-Key",
        required=False,
        max_length=255,
        min_length=1,
        description="Same key + same body within 24 h replays the first response and sends"
        " nothing; same key + different body is 409 idempotency_conflict.",
    ),
]
VerificationIdPath = Annotated[str, Parameter(description="The verification's opaque id.")]

_verification_decoder = msgspec.json.Decoder(Verification)


def _context(request: Request[Any, Any, Any]) -> tuple[Tenant, Services]:
    """The caller's tenant (found by the guard) and this process's services. Plain lookups, not
    Litestar dependencies: two dependencies cost a task group per request (~20 % of a GET)."""
    services: Services = request.app.state.services
    return authenticated_tenant(request), services


def client_ip(request: Request[Any, Any, Any], trusted_proxies: int) -> str:
    """The caller's address; with N trusted proxies, the Nth address from the right of XFF."""
    peer = request.client.host if request.client else "unknown"
    if trusted_proxies <= 0:
        return peer
    forwarded = [
        part.strip()
        for part in request.headers.get("x-forwarded-for", "").split(",")
        if part.strip()
    ]
    chain = [*forwarded, peer]
    candidate = chain[-(trusted_proxies + 1)] if len(chain) > trusted_proxies else chain[0]
    try:
        return str(ipaddress.ip_address(candidate))
    except ValueError:
        return peer


def _ip(text: str) -> str:
    """An address from `signals.ip`, in its canonical spelling."""
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        raise InvalidRequest("signals.ip: not an IPv4 or IPv6 address.") from None


class OtpController(Controller):
    path = "/otp"
    tags = ["verifications"]  # noqa: RUF012 - Litestar reads it as a class attribute
    security = [{"BearerAuth": []}, {"ApiKeyAuth": []}]  # noqa: RUF012
    guards = [authenticate]  # noqa: RUF012
    request_class = StrictJSONRequest

    @post(
        "/start",
        guards=[shed_when_overloaded],
        opt={"sheds": "start"},
        status_code=HTTP_201_CREATED,
        summary="Start a verification and send a code",
        description="Creates a verification and sends a code through the priority lane. For a"
        " number with a pending verification of the same tenant this is a resend on it (same id).",
        operation_id="startVerification",
        responses=errors_for(
            "invalid_request",
            "invalid_phone_number",
            "unauthorized",
            "destination_not_allowed",
            "idempotency_conflict",
            "payload_too_large",
            "unsupported_media_type",
            "rate_limited",
            "resend_too_soon",
            "max_sends_reached",
            "fraud_suspected",
            "service_unavailable",
            "overloaded",
        ),
    )
    async def start(
        self,
        request: Request[Any, Any, Any],
        data: JSONBody[StartRequest],
        idempotency_key: IdempotencyKey = None,
    ) -> Response[Verification]:
        tenant, services = _context(request)
        settings = request.app.state.settings

        signals = data.signals or Signals()
        # The end user's own address: signals.ip, or what a trusted proxy saw. Without either,
        # the caller is a login backend whose address is everyone's: it still counts for the
        # per-IP limit, but the fraud guard's per-IP rules are not applied to it.
        end_user_ip: str | None = None
        if signals.ip is not None:
            end_user_ip = _ip(signals.ip)
        elif settings.trusted_proxies > 0:
            end_user_ip = client_ip(request, settings.trusted_proxies)

        async def start() -> Verification:
            view = await services.sending.start(
                tenant,
                to=data.to,
                locale=data.locale,
                app_hash=data.app_hash,
                client_ref=data.client_ref,
                client_ip=end_user_ip or client_ip(request, settings.trusted_proxies),
                end_user_ip=end_user_ip,
            )
            return verification_out(view)

        if idempotency_key is None:
            return Response(await start(), status_code=HTTP_201_CREATED)

        async def start_encoded() -> bytes:
            return msgspec.json.encode(await start())

        body, replayed = await services.idempotent_starts.run(
            tenant, idempotency_key, msgspec.json.encode(data), start_encoded
        )
        return Response(
            _verification_decoder.decode(body),
            status_code=HTTP_201_CREATED,
            headers={"Idempotent-Replayed": "true"} if replayed else None,
        )

    @post(
        "/verify",
        guards=[shed_when_overloaded],
        opt={"sheds": "verify"},
        status_code=HTTP_200_OK,
        summary="Check a code",
        description="By `id` or by `to`. A right code approves the verification at most once.",
        operation_id="checkCode",
        responses=errors_for(
            "invalid_request",
            "invalid_phone_number",
            "invalid_code_format",
            "unauthorized",
            "verification_not_found",
            "payload_too_large",
            "unsupported_media_type",
            "rate_limited",
            "service_unavailable",
            "overloaded",
        ),
        request_body_examples=[
            Example(summary="by id", value={"id": "<verification id>", "code": "123456"}),
            Example(summary="by number", value={"to": "+48601234567", "code": "123456"}),
        ],
    )
    async def verify(
        self,
        request: Request[Any, Any, Any],
        data: JSONBody[VerifyRequest],
    ) -> CheckResult:
        tenant, services = _context(request)
        view = await services.checking.verify(
            tenant, verification_id=data.id, to=data.to, code=data.code
        )
        return check_out(view)

    @post(
        "/{verification_id:str}/resend",
        guards=[shed_when_overloaded],
        opt={"sheds": "resend"},
        status_code=HTTP_200_OK,
        summary="Send a new code",
        description="The previous code stops being valid (unless the tenant accepts the last"
        " two). Cooldown grows 30 s, 60 s, 120 s…; lifted when a DLR reported the SMS"
        " undelivered, expired or rejected.",
        operation_id="resendCode",
        responses=errors_for(
            "unauthorized",
            "verification_not_found",
            "rate_limited",
            "resend_too_soon",
            "max_sends_reached",
            "fraud_suspected",
            "service_unavailable",
            "overloaded",
        ),
    )
    async def resend(
        self,
        request: Request[Any, Any, Any],
        verification_id: VerificationIdPath,
    ) -> Verification:
        tenant, services = _context(request)
        return verification_out(await services.sending.resend(tenant, verification_id))

    @post(
        "/{verification_id:str}/cancel",
        status_code=HTTP_200_OK,
        summary="Cancel a pending verification",
        operation_id="cancelVerification",
        responses=errors_for(
            "unauthorized", "verification_not_found", "service_unavailable", "overloaded"
        ),
    )
    async def cancel(
        self,
        request: Request[Any, Any, Any],
        verification_id: VerificationIdPath,
    ) -> Verification:
        tenant, services = _context(request)
        return verification_out(await services.managing.cancel(tenant, verification_id))

    @get(
        "/{verification_id:str}",
        summary="Read a verification and its delivery timeline",
        operation_id="getVerification",
        responses=errors_for(
            "unauthorized", "verification_not_found", "service_unavailable", "overloaded"
        ),
    )
    async def read(
        self,
        request: Request[Any, Any, Any],
        verification_id: VerificationIdPath,
    ) -> Verification:
        tenant, services = _context(request)
        return verification_out(await services.managing.read(tenant, verification_id))
