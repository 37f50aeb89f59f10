"""Typed replies of the Lua scripts: each an array whose order is the Struct's fields (the
scripts document the same order), decoded by `decode_reply` without reading positions by hand."""

from __future__ import annotations

from collections.abc import Callable
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
    fraud_prefix: str = ""
    fraud_ip: str = ""


class FraudReply(msgspec.Struct, frozen=True, array_like=True):
    verdict: Literal["allow", "refuse", "flag"]
    rule: str = ""
    figure: int = 0
    limit: int = 0
    window: Literal["hour", "day", ""] = ""
    until_ms: int = 0
    level: int = 0


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


class EventsClaimReply(msgspec.Struct, frozen=True, array_like=True):
    depth: int
    oldest_ms: str
    """The oldest event's time, or '' when the outbox is empty."""
    now_ms: int
    claimed: list[bytes]
    """Event id, payload JSON, ..."""
    expired: list[str]
    """References of verifications whose expiry has come."""


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
    shape = _SHAPERS.get(kind)
    if shape is None:
        shape = _SHAPERS[kind] = _shaper_of(inspect.type_info(kind))
    return msgspec.convert(shape(raw), kind)


_SHAPERS: dict[type[Any], Callable[[Any], Any]] = {}
"""What turns a reply into a type's shape, worked out once per reply type: inspecting the type
on every call cost more CPU than the Redis call itself."""


def _shaper_of(info: inspect.Type) -> Callable[[Any], Any]:
    if isinstance(info, inspect.StructType):
        fields = [_shaper_of(f.type) for f in info.fields]
        count = len(fields)
        return lambda value: [f(v) for f, v in zip(fields, list(value)[:count], strict=False)]
    if isinstance(info, inspect.ListType) and not isinstance(info.item_type, inspect.BytesType):
        shape = _shaper_of(info.item_type)
        return lambda value: [shape(v) for v in value] if isinstance(value, list) else value
    for kinds, shaper in _SCALARS:
        if isinstance(info, kinds):
            return shaper
    return _as_is  # bytes, and HGETALL's flat list of bytes


def _text(value: Any) -> Any:
    return value.decode() if isinstance(value, bytes) else value


def _integer(value: Any) -> Any:
    return int(value) if isinstance(value, bytes) else value


def _flag(value: Any) -> bool:
    return value in (1, b"1", True)


def _as_is(value: Any) -> Any:
    return value


_SCALARS: tuple[tuple[Any, Callable[[Any], Any]], ...] = (
    ((inspect.StrType, inspect.LiteralType), _text),
    (inspect.IntType, _integer),
    (inspect.BoolType, _flag),
)
