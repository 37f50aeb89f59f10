"""The lane's own logic, with a fake store, recorder, rebuilder and gateway (no I/O)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

from otpservice.domain.delivery import DeliveryStatus
from otpservice.errors import ServiceUnavailable
from otpservice.ids import VerificationRef
from otpservice.lane import ClaimedSend, Send, SendJob, SendLane, SendOutcome, ShardSweep
from otpservice.providers.base import SmsMessage, SubmitReceipt
from otpservice.settings import LaneSettings

MESSAGE = SmsMessage(
    to="+48601234567", text="code", sender="Acme", external_id="x-1", validity_seconds=600
)
REF = VerificationRef("a" * 16, "b" * 26)


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


class Recorder:
    """Records outcomes; `fail` times ServiceUnavailable first; `hang`: never returns."""

    def __init__(self, fail: int = 0, hang: bool = False) -> None:
        self.fail = fail
        self.hang = hang
        self.calls = 0
        self.outcomes: list[tuple[Send, SendOutcome]] = []

    async def record_outcome(self, send: Send, outcome: SendOutcome) -> None:
        self.calls += 1
        if self.hang:
            # As redis-py can: a cancelled call surfaces as a connection error.
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                raise ServiceUnavailable from None
        if self.calls <= self.fail:
            raise ServiceUnavailable
        self.outcomes.append((send, outcome))


class Rebuilder:
    def __init__(self, can: bool = True) -> None:
        self.can = can
        self.rebuilt: list[str] = []

    def rebuild(self, claimed: ClaimedSend) -> SendJob | None:
        self.rebuilt.append(claimed.entry)
        return job(claimed.entry, shard=claimed.shard) if self.can else None


def job(entry: str, shard: int = 3, deadline: float = 1e12) -> SendJob:
    send = Send(ref=REF, number=1, region="PL", deadline=deadline, shard=shard, entry=entry)
    return SendJob(send=send, message=MESSAGE)


def lane_of(
    gateway: Gateway,
    store: Store,
    recorder: Recorder,
    rebuilder: Rebuilder | None = None,
    **kwargs: Any,
) -> SendLane:
    settings = LaneSettings(concurrency=kwargs.pop("concurrency", 2))
    return SendLane(gateway, store, recorder, rebuilder or Rebuilder(), settings, **kwargs)


async def test_a_send_still_with_the_provider_at_shutdown_is_handed_back() -> None:
    store, recorder = Store(), Recorder()
    lane = lane_of(Gateway(hang=True), store, recorder)
    lane.start()
    lane.enqueue(job("1-0"))
    await asyncio.sleep(0.01)
    await lane.stop(grace=0.05)
    assert store.handed_back == [{3: ["1-0"]}]
    assert recorder.outcomes == []


async def test_a_finished_send_is_not_handed_back() -> None:
    store, recorder, gateway = Store(), Recorder(), Gateway()
    lane = lane_of(gateway, store, recorder)
    lane.start()
    lane.enqueue(job("1-0"))
    await lane.stop(grace=1)
    assert [o.status for _, o in recorder.outcomes] == [DeliveryStatus.SUBMITTED]
    assert [m.external_id for m in gateway.sent] == ["x-1"]
    assert store.handed_back == []


async def test_a_send_whose_code_expired_is_recorded_failed_without_a_provider_call() -> None:
    store, recorder, gateway = Store(), Recorder(), Gateway()
    lane = lane_of(gateway, store, recorder)
    lane.start()
    lane.enqueue(job("1-0", deadline=0))
    await lane.stop(grace=1)
    assert gateway.sent == []
    assert [(o.status, o.provider_status) for _, o in recorder.outcomes] == [
        (DeliveryStatus.FAILED, "expired_before_send")
    ]


async def test_the_outcome_is_recorded_again_while_redis_is_away() -> None:
    store, recorder = Store(), Recorder(fail=2)

    async def no_wait(_: float) -> None:
        await asyncio.sleep(0)

    lane = lane_of(Gateway(), store, recorder, concurrency=1, sleep=no_wait)
    lane.start()
    lane.enqueue(job("1-0"))
    await lane.stop(grace=1)
    assert recorder.calls == 3
    assert len(recorder.outcomes) == 1
    assert store.handed_back == []


def claimed(entry: str) -> ClaimedSend:
    return ClaimedSend(
        shard=3, entry=entry, ref=REF, send=1, expires_ms=2_000, sealed=b"",
        to="+48601234567", region="PL", locale="en", app_hash="", tenant="acme", now_ms=1_000,
    )  # fmt: skip


async def test_the_sweep_requeues_claimed_sends_but_not_its_own() -> None:
    sweep = ShardSweep(
        depth=4, oldest_ms=500, now_ms=1_000, claimed=[claimed("1-0"), claimed("2-0")]
    )
    store, recorder, rebuilder = Store([sweep]), Recorder(), Rebuilder()
    lane = lane_of(Gateway(hang=True), store, recorder, rebuilder, concurrency=1)
    lane.enqueue(job("1-0"))  # already ours: a late renewal, not a new send
    await lane.sweep()  # without starting the dispatchers
    assert rebuilder.rebuilt == ["2-0"]
    assert lane._by_shard() == {3: ["1-0", "2-0"]}


async def test_a_claimed_send_that_cannot_be_rebuilt_is_recorded_failed_and_acknowledged() -> None:
    store, recorder = Store([ShardSweep(depth=1, oldest_ms=500, now_ms=1_000,
                                        claimed=[claimed("2-0")])]), Recorder()  # fmt: skip
    lane = lane_of(Gateway(), store, recorder, Rebuilder(can=False))
    await lane.sweep()
    [(send, outcome)] = recorder.outcomes
    assert (send.entry, send.shard, send.ref) == ("2-0", 3, REF)
    assert (outcome.status, outcome.provider_status) == (
        DeliveryStatus.FAILED,
        "unrecoverable_lane_entry",
    )
    assert lane._owned == {}


async def test_shutdown_is_not_held_by_a_send_whose_outcome_cannot_be_recorded() -> None:
    """Redis away at shutdown: the retry of the record stops, and the send is handed back."""
    store, recorder = Store(), Recorder(hang=True)
    lane = lane_of(Gateway(), store, recorder, concurrency=1)
    lane.start()
    lane.enqueue(job("1-0"))
    await asyncio.sleep(0.05)  # sent; now recording
    stopping = asyncio.create_task(lane.stop(grace=0.05))
    done, _ = await asyncio.wait({stopping}, timeout=5)  # a hang guard, not a timing check
    assert done, "shutdown hung on a send whose outcome could not be recorded"
    assert store.handed_back == [{3: ["1-0"]}]
