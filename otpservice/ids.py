"""Verification ids, and the tags that stand for a phone number or an IP address in key names.

A verification is known inside the service by its reference: the tag of its number (an HMAC of
the tenant and the E.164 number under a key derived from the pepper, so no key name or message
reference shows a phone number) and a random part. The tag is per tenant: two tenants verifying
one number share no key. The reference is what the lane and the providers carry (`externalId`
is `<reference>-<send>`); the id a tenant sees is made from it here and only here.
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

    @staticmethod
    def public_id(ref: VerificationRef, tenant: str) -> str:  # noqa: ARG004 - see ref_for_id
        """The id the tenant sees for `ref`."""
        return ref.text

    @staticmethod
    def ref_for_id(verification_id: str, tenant: str) -> VerificationRef | None:  # noqa: ARG004
        """The reference behind an id a tenant sent, or None when it cannot be one of ours.

        The scripts check that the verification is this tenant's: another tenant's id is
        answered as an unknown one.
        """
        return parse_ref(verification_id)
