"""Development mode's inbox: GET /dev/inbox?to=+E164 lists the sandbox SMS sent to a number,
newest first, text included, so an integrator's automated tests read codes without scraping
the console. app.py never mounts it in production (where the sandbox cannot run either).

It shows the caller's own SMS only (those of its tenant), and those this process sent: with
several worker processes each keeps its own (README: the development inbox).
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Request, get
from litestar.params import QueryParameter

from otpservice.api.auth import authenticate, authenticated_tenant
from otpservice.api.openapi import errors_for
from otpservice.api.schemas import Phone, Timestamp, VerificationId, iso
from otpservice.domain.phone import parse_e164
from otpservice.errors import NotFound
from otpservice.ids import parse_message_ref
from otpservice.providers.sandbox import SandboxGateway
from otpservice.services import Services

Recipient = Annotated[
    str,
    QueryParameter(
        name="to",
        description="The number, E.164 with its '+' (write it %2B in a URL: a bare '+' in a"
        " query string is read as a space, which is taken back for a '+' here). Spaces, '-',"
        " '.' and '()' between the digits are ignored.",
        max_length=64,
    ),
]


class InboxMessage(msgspec.Struct, frozen=True, kw_only=True):
    verification_id: VerificationId
    send: int
    """1 for the verification's first SMS, 2 for its first resend, ..."""
    sent_at: Timestamp
    sender: str
    text: str
    """The SMS as the phone would show it, code included."""


class Inbox(msgspec.Struct, frozen=True, kw_only=True):
    to: Phone
    messages: list[InboxMessage]
    """Newest first."""


@get(
    "/dev/inbox",
    guards=[authenticate],
    tags=["development"],
    summary="The sandbox SMS sent to a number (development mode only)",
    description="The SMS the sandbox provider took for `to` on behalf of the caller's tenant,"
    " newest first, text (and so the code) included: what the phone would have received."
    " Mounted in development mode only, never in production; each worker process keeps its own"
    " (the last 1000 SMS).",
    operation_id="getDevInbox",
    security=[{"BearerAuth": []}, {"ApiKeyAuth": []}],
    responses=errors_for("invalid_request", "invalid_phone_number", "unauthorized", "not_found"),
)
async def dev_inbox(request: Request[Any, Any, Any], to: Recipient) -> Inbox:
    gateway = request.app.state.gateway
    if not isinstance(gateway, SandboxGateway):
        raise NotFound("The inbox lists the sandbox provider's SMS; this service uses another.")
    # A '+' written bare in a query string arrives as a space: it can only have been a '+'.
    number = parse_e164("+" + to[1:] if to[:1] == " " else to).e164
    services: Services = request.app.state.services
    tenant = authenticated_tenant(request)
    tag = services.ids.number_tag(tenant.name, number)
    messages = []
    for sent in gateway.sent_to(number):
        found = parse_message_ref(sent.external_id)
        if found is None or found[0].tag != tag:
            continue  # another tenant's SMS to the same number
        ref, send = found
        messages.append(
            InboxMessage(
                verification_id=services.ids.public_id(ref, tenant.name),
                send=send,
                sent_at=iso(sent.at_ms),
                sender=sent.sender,
                text=sent.text,
            )
        )
    return Inbox(to=number, messages=messages)
