"""The lane's own logic, with a fake store and gateway (no I/O)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

from otpservice.domain.delivery import DeliveryStatus
from otpservice.errors import ServiceUnavailable
from otpservice.lane import SendJob, SendLane
from otpservice.providers.base import SmsMessage, SubmitReceipt
from otpservice.settings import LaneSettings
from otpservice.store.lane_store import ClaimedSend, ShardSweep

MESSAGE = SmsMessage(
    to="+48601234567", text="code", sender="Acme", external_id="x-1", validity_seconds=600
)


class Gateway:
    name = "fake"
    min_validity_seconds = 1

    def __init__(self, hang: bool = False) -> None:
        self.hang = hang
        self.sent: list[SmsMessage] = []

    async def submit(self, message: SmsMessage) -> SubmitReceipt:
        if self.hang:
            await asyncio.sleep(3600)
        self.sent.append(message)
        return SubmitReceipt(provider_status="accepted")

    async def aclose(self) -> None:
        return None


class Store:
    consumer = "me"

    def __init__(self, sweeps: list[ShardSweep] | None = None) -> None:
        self.sweeps = sweeps or []
        self.handed_back: list[dict[int, list[str]]] = []
        self.kept: list[dict[int, list[str]]] = []

    async def sweep(self, **_: Any) -> list[ShardSweep]:
        return self.sweeps

    async def keep(self, entries: Mapping[int, Sequence[str]]) -> None:
        self.kept.append({k: list(v) for k, v in entries.items()})

    async def hand_back(self, entries: Mapping[int, Sequence[str]], idle_ms: int) -> None:
        assert idle_ms > 0
        self.handed_back.append({k: list(v) for k, v in entries.items()})


def job(entry: str, shard: int = 3, deadline: float = 1e12) -> SendJob:
    return SendJob(
        verification_id="v", send=1, region="PL", message=MESSAGE, deadline=deadline,
        shard=shard, entry=entry,
    )  # fmt: skip


async def test_a_send_still_with_the_provider_at_shutdown_is_handed_back() -> None:
    store = Store()
    lane = SendLane(Gateway(hang=True), store, LaneSettings(concurrency=2))  # type: ignore[arg-type]
    recorded: list[Any] = []

    async def recorder(*args: Any) -> None:
        recorded.append(args)

    lane.start(recorder)
    lane.enqueue(job("1-0"))
    await asyncio.sleep(0.01)
    await lane.stop(grace=0.05)
    assert store.handed_back == [{3: ["1-0"]}]
    assert recorded == []


async def test_a_finished_send_is_not_handed_back() -> None:
    store = Store()
    gateway = Gateway()
    lane = SendLane(gateway, store, LaneSettings(concurrency=2))  # type: ignore[arg-type]
    statuses: list[DeliveryStatus] = []

    async def recorder(_job: SendJob, status: DeliveryStatus, *_: Any) -> None:
        statuses.append(status)

    lane.start(recorder)
    lane.enqueue(job("1-0"))
    await lane.stop(grace=1)
    assert statuses == [DeliveryStatus.SUBMITTED]
    assert [m.external_id for m in gateway.sent] == ["x-1"]
    assert store.handed_back == []


async def test_the_outcome_is_recorded_again_while_redis_is_away() -> None:
    store = Store()
    calls = 0

    async def recorder(*_: Any) -> None:
        nonlocal calls
        calls += 1
        if calls < 3:
            raise ServiceUnavailable

    async def no_wait(_: float) -> None:
        await asyncio.sleep(0)

    lane = SendLane(Gateway(), store, LaneSettings(concurrency=1), sleep=no_wait)  # type: ignore[arg-type]
    lane.start(recorder)
    lane.enqueue(job("1-0"))
    await lane.stop(grace=1)
    assert calls == 3
    assert store.handed_back == []


def claimed(entry: str) -> ClaimedSend:
    return ClaimedSend(
        shard=3, entry=entry, verification_id="v", send=1, expires_ms=2_000, sealed_code=b"",
        to="+48601234567", region="PL", locale="en", app_hash="", tenant="acme", now_ms=1_000,
    )  # fmt: skip


async def test_the_sweep_requeues_claimed_sends_but_not_its_own_and_reports_the_lane() -> None:
    sweep = ShardSweep(
        depth=4, oldest_ms=500, now_ms=1_000, expired=0, stale=0,
        claimed=[claimed("1-0"), claimed("2-0")],
    )  # fmt: skip
    store = Store([sweep])
    lane = SendLane(Gateway(hang=True), store, LaneSettings(concurrency=1))  # type: ignore[arg-type]
    lane.enqueue(job("1-0"))  # already ours: a late renewal, not a new send
    rebuilt: list[str] = []

    async def reclaimer(c: ClaimedSend) -> SendJob:
        rebuilt.append(c.entry)
        return job(c.entry)

    lane._reclaimer = reclaimer  # sweep() without starting the dispatchers
    await lane.sweep()
    assert rebuilt == ["2-0"]
    await lane.renew()
    assert store.kept == [{3: ["1-0", "2-0"]}]


async def test_shutdown_is_not_held_by_a_send_whose_outcome_cannot_be_recorded() -> None:
    """Redis away at shutdown: the retry of the record stops, and the send is handed back."""
    store = Store()

    async def recorder(*_: Any) -> None:
        # As redis-py can: a cancelled call surfaces as a connection error, not CancelledError.
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            raise ServiceUnavailable from None

    lane = SendLane(Gateway(), store, LaneSettings(concurrency=1))  # type: ignore[arg-type]
    lane.start(recorder)
    lane.enqueue(job("1-0"))
    await asyncio.sleep(0.05)  # sent; now recording
    stopping = asyncio.create_task(lane.stop(grace=0.05))
    done, _ = await asyncio.wait({stopping}, timeout=5)  # a hang guard, not a timing check
    assert done, "shutdown hung on a send whose outcome could not be recorded"
    assert store.handed_back == [{3: ["1-0"]}]
