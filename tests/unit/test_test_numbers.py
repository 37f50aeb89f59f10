"""A tenant's test numbers on the in-memory store: the fixed code works, no SMS leaves, the
timeline says so, and nothing counts towards conversion or the fraud guard."""

from __future__ import annotations

from collections.abc import Iterator

import msgspec
import pytest
from prometheus_client import REGISTRY

from otpservice.errors import MaxSendsReached
from otpservice.hashing import matching_digest
from otpservice.ids import VerificationRef
from otpservice.lane import ClaimedSend
from otpservice.sealing import CodeSealer
from otpservice.settings import Secret
from otpservice.usecases.composing import SmsComposer
from tests.unit.world import NUMBER, PEPPER, World

REVIEW_NUMBER = "+48601000001"
FIXED_CODE = "424242"


@pytest.fixture
def world() -> Iterator[World]:
    w = World()
    # The in-memory world's tenant, with one review number (the settings would have it so).
    w.acme = msgspec.structs.replace(
        w.acme, test_numbers={REVIEW_NUMBER: Secret(FIXED_CODE.encode())}
    )
    yield w
    w.close()


def metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_a_start_to_a_test_number_sends_nothing_and_its_timeline_says_so(
    world: World,
) -> None:
    view = await world.start(REVIEW_NUMBER)
    assert world.queue.jobs == [], "no SMS may be handed to the lane"
    assert view.delivery_status == "delivered"
    timeline = [(e.status, e.provider, e.provider_status) for e in view.events]
    assert timeline == [
        ("queued", "test_number", None),
        ("delivered", "test_number", "no_sms_sent"),
    ]
    # GET /otp/{id} shows the same timeline.
    read = await world.managing.read(world.acme, view.id)
    assert [(e.status, e.provider_status) for e in read.events] == [
        ("queued", None),
        ("delivered", "no_sms_sent"),
    ]


async def test_the_fixed_code_approves_and_a_wrong_one_does_not(world: World) -> None:
    view = await world.start(REVIEW_NUMBER)
    wrong = await world.verify("000000", id=view.id)
    assert (wrong.valid, wrong.attempts_left) == (False, 4)
    right = await world.verify(FIXED_CODE, id=view.id)
    assert (right.valid, right.status) == (True, "approved")


async def test_the_fixed_code_is_stored_hashed_like_any_code(world: World) -> None:
    view = await world.start(REVIEW_NUMBER)
    ref = world.ids.ref_for_id(view.id, "acme")
    assert ref is not None
    begun = await world.store.check_begin(
        tenant="acme", tag=ref.tag, rand=ref.rand, failed_limit=20, failed_window_ms=86_400_000
    )
    assert FIXED_CODE.encode() not in b"".join(begun.digests)
    candidate = await world.hasher.hash_code_async(FIXED_CODE, begun.salt)
    assert matching_digest(candidate, list(begun.digests)) == 0


async def test_a_test_number_counts_for_no_conversion_and_no_fraud_budget(world: World) -> None:
    started = metric("otp_verifications_started_total", country="PL")
    approved = metric("otp_verifications_approved_total", country="PL")
    view = await world.start(REVIEW_NUMBER)
    await world.verify(FIXED_CODE, id=view.id)
    again = await world.start(REVIEW_NUMBER)
    await world.verify(FIXED_CODE, to=REVIEW_NUMBER)
    assert again.id != view.id
    assert metric("otp_verifications_started_total", country="PL") == started
    assert metric("otp_verifications_approved_total", country="PL") == approved
    assert world.fraud.settled == [], "the fraud guard must not count a test number's approval"
    assert world.store.fraud_queries == [None, None], "nor be asked about its sends"


async def test_an_ordinary_number_of_the_same_tenant_still_gets_its_sms(world: World) -> None:
    started = metric("otp_verifications_started_total", country="PL")
    view = await world.start(NUMBER)
    assert [j.message.to for j in world.queue.jobs] == [NUMBER]
    assert view.delivery_status == "queued"
    code = world.queue.code_to(NUMBER)
    assert (await world.verify(code, id=view.id)).valid
    assert metric("otp_verifications_started_total", country="PL") == started + 1


async def test_a_test_number_has_no_cooldown_or_send_limit_but_max_sends_holds(
    world: World,
) -> None:
    first = await world.start(REVIEW_NUMBER)
    resent = await world.sending.resend(world.acme, first.id)
    assert (resent.id, resent.sends, resent.delivery_status) == (first.id, 2, "delivered")
    for _ in range(3):
        await world.start(REVIEW_NUMBER)  # a start on the open verification: a resend
    with pytest.raises(MaxSendsReached):
        await world.start(REVIEW_NUMBER)
    assert world.queue.jobs == []
    assert (await world.verify(FIXED_CODE, to=REVIEW_NUMBER)).valid
    # Far more starts than the number's hourly limit (5): none is refused.
    for _ in range(8):
        view = await world.start(REVIEW_NUMBER)
        assert (await world.verify(FIXED_CODE, id=view.id)).valid


async def test_another_tenant_has_no_test_numbers_of_its_own(world: World) -> None:
    view = await world.start(REVIEW_NUMBER, tenant=world.other)
    assert [j.message.to for j in world.queue.jobs] == [REVIEW_NUMBER]
    assert view.delivery_status == "queued"


def test_a_test_numbers_lane_entry_taken_over_is_never_sent() -> None:
    """A process that stopped between storing the code and recording it leaves a lane entry;
    whoever claims it must not turn it into an SMS."""
    world = World()
    try:
        acme = msgspec.structs.replace(
            world.acme, test_numbers={REVIEW_NUMBER: Secret(FIXED_CODE.encode())}
        )
        sealer = CodeSealer(PEPPER)
        composer = SmsComposer({"acme": acme}, sealer, None)
        ref = VerificationRef("t" * 26, "r" * 26)
        claimed = ClaimedSend(
            shard=0, entry="1-0", ref=ref, send=1, expires_ms=600_000,
            sealed=sealer.seal(FIXED_CODE, ref.text), to=REVIEW_NUMBER, region="PL",
            locale="pl", app_hash="", tenant="acme", now_ms=0,
        )  # fmt: skip
        assert composer.rebuild(claimed) is None
        assert composer.rebuild(msgspec.structs.replace(claimed, to=NUMBER)) is not None
    finally:
        world.close()
