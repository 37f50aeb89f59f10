"""Checking codes (usecases/checking.py) on the in-memory store."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from otpservice.errors import InvalidCodeFormat, InvalidRequest, RateLimited, VerificationNotFound
from tests.unit.world import NUMBER, World, tenant


@pytest.fixture
def world() -> Iterator[World]:
    w = World()
    yield w
    w.close()


def wrong(code: str) -> str:
    return "000000" if code != "000000" else "111111"


async def test_the_right_code_approves_once_and_then_the_verification_is_gone(
    world: World,
) -> None:
    view = await world.start()
    code = world.queue.code_to()
    checked = await world.verify(code, id=view.id)
    assert (checked.id, checked.status, checked.valid, checked.attempts_left) == (
        view.id,
        "approved",
        True,
        4,
    )
    with pytest.raises(VerificationNotFound):
        await world.verify(code, id=view.id)
    assert (await world.managing.read(world.acme, view.id)).status == "approved"


async def test_a_check_by_number_finds_the_numbers_open_verification(world: World) -> None:
    view = await world.start()
    checked = await world.verify(world.queue.code_to(), to=NUMBER)
    assert (checked.id, checked.valid) == (view.id, True)


async def test_wrong_codes_use_attempts_and_the_last_one_fails_the_verification(
    world: World,
) -> None:
    view = await world.start()
    code = world.queue.code_to()
    answers = [await world.verify(wrong(code), id=view.id) for _ in range(5)]
    assert [(a.status, a.attempts_left) for a in answers] == [
        ("pending", 4),
        ("pending", 3),
        ("pending", 2),
        ("pending", 1),
        ("failed", 0),
    ]
    with pytest.raises(VerificationNotFound):
        await world.verify(code, id=view.id)


async def test_a_malformed_code_costs_no_attempt(world: World) -> None:
    view = await world.start()
    for bad in ("12345", "1234567", "12a456", "١٢٣٤٥٦"):
        with pytest.raises(InvalidCodeFormat):
            await world.verify(bad, id=view.id)
    checked = await world.verify(wrong(world.queue.code_to()), id=view.id)
    assert checked.attempts_left == 4


async def test_exactly_one_of_id_and_to_is_needed(world: World) -> None:
    view = await world.start()
    with pytest.raises(InvalidRequest):
        await world.checking.verify(world.acme, verification_id=None, to=None, code="123456")
    with pytest.raises(InvalidRequest):
        await world.checking.verify(world.acme, verification_id=view.id, to=NUMBER, code="1")


async def test_failed_checks_are_capped_per_number_across_verifications(world: World) -> None:
    world.acme = tenant(limits={"failed_checks_per_number": 3})
    view = await world.start()
    code = world.queue.code_to()
    for _ in range(3):
        await world.verify(wrong(code), id=view.id)
    with pytest.raises(RateLimited) as refused:
        await world.verify(code, id=view.id)
    assert refused.value.scope == "failed_checks"
    assert refused.value.retry_after == 86_400


async def test_a_right_code_is_not_counted_as_a_failed_check(world: World) -> None:
    world.acme = tenant(limits={"failed_checks_per_number": 2}, resend_cooldown_seconds=0)
    for _ in range(3):
        view = await world.start()
        await world.verify(world.queue.code_to(), id=view.id)
    view = await world.start()
    assert (await world.verify(world.queue.code_to(), id=view.id)).valid is True


async def test_after_a_resend_the_previous_code_works_only_when_the_tenant_accepts_it(
    world: World,
) -> None:
    for accepted in (False, True):
        world.acme = tenant(accept_previous_code=accepted, resend_cooldown_seconds=0)
        number = f"+4860100000{int(accepted)}"
        view = await world.start(number)
        old = world.queue.code_to(number)
        await world.sending.resend(world.acme, view.id)
        if old == world.queue.code_to(number):
            continue  # the new code happens to equal the old one: nothing to tell apart
        checked = await world.verify(old, id=view.id)
        assert checked.valid is accepted


async def test_another_tenant_cannot_check_a_verification(world: World) -> None:
    view = await world.start()
    with pytest.raises(VerificationNotFound):
        await world.verify(world.queue.code_to(), tenant=world.other, id=view.id)
    with pytest.raises(VerificationNotFound):
        await world.verify(world.queue.code_to(), tenant=world.other, to=NUMBER)
    assert (await world.verify(world.queue.code_to(), id=view.id)).valid is True


async def test_an_expired_code_is_not_found(world: World) -> None:
    view = await world.start()
    world.clock.advance(600)
    with pytest.raises(VerificationNotFound):
        await world.verify(world.queue.code_to(), id=view.id)
