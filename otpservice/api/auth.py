"""Tenant resolution from the API key: SHA-256 digests compared in constant time.

`authenticate` is the client API's guard: Litestar runs guards before it reads a request's body,
so a request without a valid key is refused before a byte of its body is parsed.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from typing import Any, cast

from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler

from otpservice import metrics
from otpservice.errors import Overloaded, Unauthorized
from otpservice.settings import Tenant

MAX_KEY_LENGTH = 256
_SCOPE_KEY = "otpservice.tenant"


async def authenticate(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Resolve the caller's tenant from its API key, or refuse the request (401)."""
    key = api_key_from_headers(
        connection.headers.get("authorization"), connection.headers.get("x-api-key")
    )
    tenant = tenant_for_key(key, connection.app.state.settings.tenants)
    cast("dict[str, Any]", connection.scope)[_SCOPE_KEY] = tenant


async def shed_when_overloaded(
    connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler
) -> None:
    """Guard of the routes that hash: refuse at once, before the body is read, when this
    process's argon2 queue is already too long (the use case checks again when it hashes)."""
    operation = str(handler.opt.get("sheds", "other"))
    if connection.app.state.services.hasher.saturated_for(operation):
        metrics.count_shed(operation)
        raise Overloaded


def authenticated_tenant(connection: ASGIConnection[Any, Any, Any, Any]) -> Tenant:
    """The tenant `authenticate` found for this request."""
    tenant: Tenant = cast("dict[str, Any]", connection.scope)[_SCOPE_KEY]
    return tenant


def api_key_from_headers(authorization: str | None, x_api_key: str | None) -> str:
    if authorization:
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
    if x_api_key and x_api_key.strip():
        return x_api_key.strip()
    raise Unauthorized("Send your API key as 'Authorization: Bearer <key>' or 'X-Api-Key: <key>'.")


def tenant_for_key(api_key: str, tenants: Sequence[Tenant]) -> Tenant:
    """The tenant owning `api_key`. Every digest is compared, with no early exit."""
    if len(api_key) > MAX_KEY_LENGTH:
        raise Unauthorized("The API key is not valid.")
    digest = hashlib.sha256(api_key.encode()).digest()
    found: Tenant | None = None
    for tenant in tenants:
        for candidate in tenant.api_key_digests:
            if hmac.compare_digest(digest, candidate) and found is None:
                found = tenant
    if found is None:
        raise Unauthorized("The API key is not valid.")
    return found
