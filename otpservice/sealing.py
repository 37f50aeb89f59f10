"""Seals a code for the priority lane's stream: the code must wait in Redis until its SMS is
submitted, and no code may be stored in clear.

AES-256-GCM under a key derived from the pepper, with the verification id and send number as
associated data, so a sealed code cannot be moved to another send. Whoever holds the pepper can
open it, as whoever holds the pepper can already try every code against the hashes; a Redis dump
alone opens nothing.
"""

from __future__ import annotations

import hmac
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from otpservice.settings import Secret

_NONCE_BYTES = 12


class CodeSealer:
    def __init__(self, pepper: Secret) -> None:
        self._aead = AESGCM(hmac.digest(pepper.reveal(), b"otpservice/lane-seal/v1", "sha256"))

    def seal(self, code: str, message_ref: str) -> bytes:
        nonce = os.urandom(_NONCE_BYTES)
        return nonce + self._aead.encrypt(nonce, code.encode(), message_ref.encode())

    def open(self, sealed: bytes, message_ref: str) -> str | None:
        """The code, or None when the seal was made under another pepper or was altered."""
        try:
            plain = self._aead.decrypt(
                sealed[:_NONCE_BYTES], sealed[_NONCE_BYTES:], message_ref.encode()
            )
        except (InvalidTag, ValueError):
            return None
        return plain.decode()
