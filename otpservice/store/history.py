"""The support console's reads of verifications: a number's latest one and the earlier ones
it lists (`earlier`, newest first), with their delivery events. Plain reads, nothing written,
so no script: one read of the number's current record, then one pipelined read of its events
and of the earlier records and theirs (all in the number's slot). An earlier one that has
expired meanwhile is simply missing."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from otpservice.ids import VerificationRef
from otpservice.store import keys
from otpservice.store.client import StoreClient
from otpservice.store.schema import RECORD, decode_events, decode_record
from otpservice.usecases.support import NumberHistory, SupportRecord

_RAND = RECORD["rand"].encode()
_TENANT = RECORD["tenant"].encode()
_EARLIER = RECORD["earlier"].encode()
_MAX_ATTEMPTS = RECORD["max_attempts"].encode()
_WRONG_CHECKS = RECORD["wrong_checks"].encode()


class RedisHistory:
    def __init__(self, store: StoreClient) -> None:
        self.store = store

    async def number(self, tenant: str, tag: str) -> NumberHistory:
        current = keys.NumberKeys(tag).current
        latest = await self.store.call("console_history", self.store.redis.hgetall(current))
        rand = _bytes(latest.get(_RAND))
        if not latest or _bytes(latest.get(_TENANT)) != tenant.encode() or not rand:
            return NumberHistory(now_ms=_wall_ms(), records=())
        earlier = [r.decode() for r in _bytes(latest.get(_EARLIER)).split()]
        refs = [VerificationRef(tag, r) for r in earlier]
        found = [keys.VerificationKeys(ref) for ref in refs]
        replies = await self._pipelined(
            [("get", keys.VerificationKeys(VerificationRef(tag, rand.decode())).events)]
            + [call for k in found for call in (("hgetall", k.archived), ("get", k.events))]
        )
        records = [_record(tag, latest, replies[0])]
        for index in range(len(found)):
            fields, events = replies[1 + 2 * index], replies[2 + 2 * index]
            if fields and _bytes(fields.get(_TENANT)) == tenant.encode():
                records.append(_record(tag, fields, events))
        return NumberHistory(now_ms=_wall_ms(), records=tuple(records))

    async def verification(self, tenant: str, ref: VerificationRef) -> SupportRecord | None:
        found = keys.VerificationKeys(ref)
        current, archived, events = await self._pipelined(
            [("hgetall", found.current), ("hgetall", found.archived), ("get", found.events)]
        )
        for fields in (current, archived):
            if (
                fields
                and _bytes(fields.get(_RAND)) == ref.rand.encode()
                and _bytes(fields.get(_TENANT)) == tenant.encode()
            ):
                return _record(ref.tag, fields, events)
        return None

    async def _pipelined(self, calls: list[tuple[Any, ...]]) -> list[Any]:
        """Reads of one slot in one round trip (a Cluster pipeline sends them to one node)."""

        async def run() -> list[Any]:
            async with self.store.redis.pipeline(transaction=False) as pipe:
                for name, *args in calls:
                    getattr(pipe, name)(*args)
                return list(await pipe.execute())

        return await self.store.call("console_history", run())


def _record(tag: str, fields: Mapping[Any, Any], events: Any) -> SupportRecord:
    flat = [item for pair in fields.items() for item in pair]
    return SupportRecord(
        record=decode_record(tag, flat),
        events=decode_events(_bytes(events)),
        max_attempts=_int(fields.get(_MAX_ATTEMPTS)),
        wrong_checks=_int(fields.get(_WRONG_CHECKS)),
    )


def _bytes(value: Any) -> bytes:
    if value is None:
        return b""
    return value if isinstance(value, bytes) else str(value).encode()


def _int(value: Any) -> int:
    text = _bytes(value)
    return int(text) if text.isdigit() else 0


def _wall_ms() -> int:
    """This process's clock (TIME has no slot to go to on a Cluster); the records' times are
    the store's, which agree with it to well within what the console shows (seconds)."""
    return time.time_ns() // 1_000_000
