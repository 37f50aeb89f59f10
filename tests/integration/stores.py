"""Building blocks for tests that drive a repository directly (memory or Redis): requests with
sensible defaults, and a started verification."""

from __future__ import annotations

import itertools
from typing import Any

import msgspec

from otpservice.ids import Identifiers, VerificationRef, message_ref
from otpservice.settings import Secret
from otpservice.usecases.ports import NewCode, SendLimits, SendRepository, SendRequest

TENANT = "acme"
IDS = Identifiers(Secret(b"p" * 32))
_numbers = itertools.count(1)
UNLIMITED = SendLimits(sends_per_hour=1000, sends_per_day=1000)


def sms_ref(verification_id: str, send: int = 1, tenant: str = TENANT) -> str:
    """The externalId of one SMS of a verification (the message reference is not the id)."""
    ref = IDS.ref_for_id(verification_id, tenant)
    assert ref is not None
    return message_ref(ref, send)


def fresh_tag(tenant: str = TENANT) -> str:
    """The tag of a number no other test used."""
    return IDS.number_tag(tenant, f"+4860{next(_numbers):07d}")


def send_request(tag: str, **overrides: Any) -> SendRequest:
    """A start for the number `tag` that saw no verification; override any field."""
    request = SendRequest(
        tenant=TENANT,
        tag=tag,
        by_id=False,
        seen_rand="",
        seen_open=False,
        new_rand=IDS.new_rand(),
        to="+48600000000",
        region="PL",
        locale="pl",
        app_hash="",
        client_ref="",
        provider="sandbox",
        limits=UNLIMITED,
        ttl_ms=600_000,
        max_attempts=5,
        max_sends=5,
        cooldowns_ms=(30_000, 60_000, 120_000, 240_000, 480_000),
        accept_previous=False,
        retention_ms=3_600_000,
    )
    return msgspec.structs.replace(request, **overrides)


def new_code(digest: bytes = b"d" * 32, salt: bytes = b"s" * 16) -> NewCode:
    return NewCode(salt=salt, digest=digest, sealed=b"sealed")


async def start(
    repo: SendRepository, tag: str, digest: bytes = b"d" * 32, **overrides: Any
) -> VerificationRef:
    """Pre-check and commit a send to the number `tag`, as SendCodes does; the verification."""
    tenant = overrides.get("tenant", TENANT)
    limits = overrides.get("limits", UNLIMITED)
    check = await repo.send_precheck(tenant=tenant, tag=tag, rand=None, limits=limits, ip=None)
    assert check.verdict in {"new", "resend"}, check
    request = send_request(
        tag, seen_rand=check.rand, seen_open=check.verdict == "resend", **overrides
    )
    committed = await repo.send_commit(request, new_code(digest, check.salt or b"s" * 16))
    assert committed.verdict == "ok", committed
    assert committed.record is not None
    return committed.record.ref
