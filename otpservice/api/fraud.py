"""The tenant's view of its fraud guard: the blocks in force (with their reasons) and the safe
list, under /fraud. Same API keys as /otp."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from litestar import Controller, Request, delete, get, put
from litestar.params import Parameter
from litestar.status_codes import HTTP_200_OK

from otpservice.api.auth import authenticate, authenticated_tenant
from otpservice.api.openapi import errors_for
from otpservice.api.schemas import Timestamp, iso
from otpservice.errors import NotFound
from otpservice.services import Services
from otpservice.usecases.fraud import describe_block
from otpservice.usecases.ports import FraudBlock

BlockId = Annotated[
    str,
    Parameter(description="A block's `id`: `prefix:+447700` or `ip:<tag>`."),
]
SafeEntry = Annotated[
    str,
    Parameter(
        description="A number or a prefix in E.164 form: `+48601234567` or `+4860`.",
        pattern=r"^\+[0-9]{1,15}$",
    ),
]


class FraudBlockOut(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    """`prefix:<E.164 prefix>` or `ip:<tag>` (an end user's IP is never stored in clear)."""
    kind: Literal["prefix", "ip"]
    prefix: str | None
    country: str
    """The ISO 3166 region of the send that set the block."""
    rule: str
    """prefix_budget, ip_budget or ip_countries."""
    figure: int
    limit: int
    window: Literal["hour", "day"]
    blocked_at: Timestamp
    until: Timestamp
    level: int
    """Blocks of this prefix or IP within a day before this one (each doubles the cool-off)."""
    detail: str
    """The refusal's words: rule, figures and end."""


class FraudBlocks(msgspec.Struct, frozen=True, kw_only=True):
    blocks: list[FraudBlockOut]


class SafeList(msgspec.Struct, frozen=True, kw_only=True):
    entries: list[str]
    """Numbers and prefixes no rule blocks (besides the ones in the tenant's configuration)."""


_KINDS = {"prefix": "p:", "ip": "i:"}


def block_out(block: FraudBlock) -> FraudBlockOut:
    kind: Literal["prefix", "ip"] = "prefix" if block.key.startswith("p:") else "ip"
    value = block.key[2:]
    return FraudBlockOut(
        id=f"{kind}:{value}",
        kind=kind,
        prefix=value if kind == "prefix" else None,
        country=block.country,
        rule=block.rule,
        figure=block.figure,
        limit=block.limit,
        window="hour" if block.window == "hour" else "day",
        blocked_at=iso(block.at_ms),
        until=iso(block.until_ms),
        level=block.level,
        detail=describe_block(block),
    )


def _stored_key(block_id: str) -> str:
    kind, _, value = block_id.partition(":")
    if kind not in _KINDS or not value:
        raise NotFound("No such block: an id is prefix:<prefix> or ip:<tag>.")
    return _KINDS[kind] + value


class FraudController(Controller):
    path = "/fraud"
    tags = ["fraud guard"]  # noqa: RUF012 - Litestar reads it as a class attribute
    security = [{"BearerAuth": []}, {"ApiKeyAuth": []}]  # noqa: RUF012
    guards = [authenticate]  # noqa: RUF012

    @get(
        "/blocks",
        summary="The fraud guard's blocks in force",
        description="Prefixes and end-user IPs blocked for blowing their budget of unverified"
        " sends, newest last, each with its rule, figures and end.",
        operation_id="listFraudBlocks",
        responses=errors_for("unauthorized", "service_unavailable", "overloaded"),
    )
    async def blocks(self, request: Request[Any, Any, Any]) -> FraudBlocks:
        services: Services = request.app.state.services
        found = await services.fraud.blocks(authenticated_tenant(request))
        return FraudBlocks(blocks=[block_out(b) for b in found])

    @delete(
        "/blocks/{block_id:str}",
        status_code=HTTP_200_OK,
        summary="Lift a block now",
        description="The prefix or IP may be sent to again at once; its budget is unchanged, so"
        " more unverified sends block it again (for twice as long).",
        operation_id="liftFraudBlock",
        responses=errors_for("unauthorized", "not_found", "service_unavailable", "overloaded"),
    )
    async def lift(self, request: Request[Any, Any, Any], block_id: BlockId) -> FraudBlocks:
        services: Services = request.app.state.services
        tenant = authenticated_tenant(request)
        if not await services.fraud.lift(tenant, _stored_key(block_id)):
            raise NotFound("No block in force with this id.")
        return FraudBlocks(blocks=[block_out(b) for b in await services.fraud.blocks(tenant)])

    @get(
        "/safe-list",
        summary="The safe list",
        description="Numbers and prefixes (the tenant's test and staff numbers) that no fraud"
        " rule blocks. Entries of the tenant's configuration (`[policy.fraud] safe_numbers`,"
        " `safe_prefixes`) apply too and are not listed here.",
        operation_id="getFraudSafeList",
        responses=errors_for("unauthorized", "service_unavailable", "overloaded"),
    )
    async def safe_list(self, request: Request[Any, Any, Any]) -> SafeList:
        services: Services = request.app.state.services
        return SafeList(entries=await services.fraud.safe_list(authenticated_tenant(request)))

    @put(
        "/safe-list/{entry:str}",
        status_code=HTTP_200_OK,
        summary="Add a number or prefix to the safe list",
        operation_id="addToFraudSafeList",
        responses=errors_for(
            "invalid_request", "unauthorized", "service_unavailable", "overloaded"
        ),
    )
    async def add_safe(self, request: Request[Any, Any, Any], entry: SafeEntry) -> SafeList:
        services: Services = request.app.state.services
        tenant = authenticated_tenant(request)
        return SafeList(entries=await services.fraud.safe_list(tenant, add=entry))

    @delete(
        "/safe-list/{entry:str}",
        status_code=HTTP_200_OK,
        summary="Remove a number or prefix from the safe list",
        operation_id="removeFromFraudSafeList",
        responses=errors_for(
            "invalid_request", "unauthorized", "service_unavailable", "overloaded"
        ),
    )
    async def remove_safe(self, request: Request[Any, Any, Any], entry: SafeEntry) -> SafeList:
        services: Services = request.app.state.services
        tenant = authenticated_tenant(request)
        return SafeList(entries=await services.fraud.safe_list(tenant, remove=entry))
