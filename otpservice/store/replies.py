"""Typed replies of the Lua scripts: each an array whose order is the Struct's fields (the
scripts document the same order), decoded by `decode_reply` without reading positions by hand."""

from __future__ import annotations

from typing import Any, Literal, TypeVar

import msgspec
from msgspec import inspect

T = TypeVar("T")


class SendCheckReply(msgspec.Struct, frozen=True, array_like=True):
    verdict: Literal["new", "resend", "not_found", "max_sends", "too_soon", "hour", "day"]
    wait_ms: int
    rand: str
    open: bool
    salt: bytes


class SendCommitReply(msgspec.Struct, frozen=True, array_like=True):
    verdict: Literal["ok", "conflict", "not_found", "max_sends", "too_soon", "hour", "day"]
    wait_ms: int
    created: bool = False
    now_ms: int = 0
    record: list[bytes] = msgspec.field(default_factory=list)
    """HGETALL of the verification after the send."""
    entry: str = ""


class CheckBeginReply(msgspec.Struct, frozen=True, array_like=True):
    verdict: Literal["ok", "not_found", "rate_limited"]
    wait_ms: int = 0
    rand: str = ""
    salt: bytes = b""
    digest: bytes = b""
    previous_digest: bytes = b""
    sends: int = 0


class CheckFinishReply(msgspec.Struct, frozen=True, array_like=True):
    verdict: Literal["approved", "pending", "failed", "not_found"]
    attempts_left: int = 0
    created_ms: int = 0
    region: str = ""


class ReadReply(msgspec.Struct, frozen=True, array_like=True):
    now_ms: int
    record: list[bytes]
    events: bytes


class DeliveryReply(msgspec.Struct, frozen=True, array_like=True):
    verdict: Literal["unmatched", "duplicate", "recorded"]
    previous: str = ""
    current: str = ""
    submitted_ms: str = ""
    region: str = ""
    now_ms: int = 0


class IdempotencyReply(msgspec.Struct, frozen=True, array_like=True):
    verdict: Literal["reserved", "conflict", "in_progress", "replay"]
    response: bytes = b""


class ClaimedEntry(msgspec.Struct, frozen=True, array_like=True):
    entry: str
    ref: str
    send: int
    expires_ms: int
    sealed: bytes


class SweepReply(msgspec.Struct, frozen=True, array_like=True):
    depth: int
    oldest: str
    now_ms: int
    claimed: list[ClaimedEntry]


class ResumeReply(msgspec.Struct, frozen=True, array_like=True):
    verdict: Literal["stale", "expired", "send"]
    to: str = ""
    region: str = ""
    locale: str = ""
    app_hash: str = ""
    tenant: str = ""


def decode_reply(raw: Any, kind: type[T]) -> T:
    """A script's reply as `kind`. Redis gives Lua's strings as bytes: they become text where
    `kind` wants text, numbers where it wants numbers."""
    return msgspec.convert(_shape(raw, inspect.type_info(kind)), kind)


def _shape(value: Any, info: inspect.Type) -> Any:
    if isinstance(info, inspect.StructType):
        fields = info.fields
        return [_shape(v, fields[i].type) for i, v in enumerate(list(value)[: len(fields)])]
    if isinstance(info, inspect.StrType | inspect.LiteralType) and isinstance(value, bytes):
        return value.decode()
    if isinstance(info, inspect.IntType) and isinstance(value, bytes):
        return int(value)
    if isinstance(info, inspect.BoolType):
        return value in (1, b"1", True)
    if isinstance(info, inspect.ListType) and isinstance(value, list):
        return [_shape(v, info.item_type) for v in value]
    return value
