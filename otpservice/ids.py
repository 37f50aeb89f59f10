"""Verification ids, and the tags that stand for a phone number or an IP address in key names.

A verification is known inside the service by its reference: the tag of its number (an HMAC of
the tenant and the E.164 number under a key derived from the pepper, so no key name or message
reference shows a phone number) and a random part. The tag is per tenant: two tenants verifying
one number share no key. The reference is what the lane and the providers carry (`externalId`
is `<reference>-<send>`: the provider sees the number anyway).

The id a tenant sees is the random part followed by the tag sealed under a key of that tenant
(XOR with an HMAC of the random part): two ids of one number share nothing a client could
compare, and another tenant's key opens an id into a tag that leads nowhere. Opening an id is
local arithmetic, no Redis call.
"""

from __future__ import annotations

import base64
import hmac
import re
import secrets
from typing import NamedTuple

from otpservice.settings import Secret

TAG_LEN = 16
RAND_LEN = 26
_TAG_BYTES = TAG_LEN * 5 // 8
# fullmatch and [0-9], not isdigit(): a trailing newline, an Arabic-Indic or a superscript digit
# must not pass for ours.
_REF_RE = re.compile(rf"[a-z2-7]{{{TAG_LEN + RAND_LEN}}}")
_SEND_RE = re.compile(r"[1-9][0-9]{0,3}")


def b32(data: bytes) -> str:
    return base64.b32encode(data).decode().rstrip("=").lower()


class VerificationRef(NamedTuple):
    """Where a verification lives: its number's tag and its own random part."""

    tag: str
    rand: str

    @property
    def text(self) -> str:
        return self.tag + self.rand


def parse_ref(text: str) -> VerificationRef | None:
    """The reference in `text`, or None when it cannot be one of ours."""
    if not _REF_RE.fullmatch(text):
        return None
    return VerificationRef(text[:TAG_LEN], text[TAG_LEN:])


def message_ref(ref: VerificationRef, send: int) -> str:
    """The reference of one SMS, unique per send: the `externalId` providers echo in reports."""
    return f"{ref.text}-{send}"


def parse_message_ref(text: str) -> tuple[VerificationRef, int] | None:
    """(verification, send) of one of our SMS references, or None for anything else."""
    head, _, send = text.rpartition("-")
    ref = parse_ref(head)
    if ref is None or not _SEND_RE.fullmatch(send):
        return None
    return ref, int(send)


class Identifiers:
    """Makes tags, random parts and ids; holds the HMAC key that turns numbers into tags."""

    def __init__(self, pepper: Secret) -> None:
        self._tag_key = hmac.digest(pepper.reveal(), b"otpservice/key-tags/v2", "sha256")
        self._seal_root = hmac.digest(pepper.reveal(), b"otpservice/id-seal/v1", "sha256")
        self._seal_keys: dict[str, bytes] = {}

    def _tag(self, kind: bytes, tenant: str, value: str) -> str:
        message = kind + tenant.encode() + b"\0" + value.encode()
        return b32(hmac.digest(self._tag_key, message, "sha256"))[:TAG_LEN]

    def number_tag(self, tenant: str, e164: str) -> str:
        return self._tag(b"n:", tenant, e164)

    def ip_tag(self, tenant: str, ip: str) -> str:
        return self._tag(b"i:", tenant, ip)

    @staticmethod
    def new_rand() -> str:
        return b32(secrets.token_bytes(16))[:RAND_LEN]

    def _mask(self, tenant: str, rand: str) -> bytes:
        key = self._seal_keys.get(tenant)
        if key is None:
            key = hmac.digest(self._seal_root, tenant.encode(), "sha256")
            self._seal_keys[tenant] = key
        return hmac.digest(key, rand.encode(), "sha256")[:_TAG_BYTES]

    def public_id(self, ref: VerificationRef, tenant: str) -> str:
        """The id the tenant sees for `ref`."""
        tag = base64.b32decode(ref.tag.upper())
        sealed = bytes(a ^ b for a, b in zip(tag, self._mask(tenant, ref.rand), strict=True))
        return ref.rand + b32(sealed)

    def ref_for_id(self, verification_id: str, tenant: str) -> VerificationRef | None:
        """The reference behind an id a tenant sent, or None when it cannot be one of ours.

        Any well-formed id opens into some reference; one that is not this tenant's leads to
        keys that hold nothing of it (and the scripts check the tenant too).
        """
        if not _REF_RE.fullmatch(verification_id):
            return None
        rand, sealed = verification_id[:RAND_LEN], verification_id[RAND_LEN:]
        masked = base64.b32decode(sealed.upper())
        tag = bytes(a ^ b for a, b in zip(masked, self._mask(tenant, rand), strict=True))
        return VerificationRef(b32(tag), rand)
