"""Admission control: when this process's argon2 queue would make a request wait too long, the
request is shed (503 overloaded) before it takes an attempt, a send or a hash."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from otpservice.errors import Overloaded
from otpservice.hashing import CodeHasher
from otpservice.settings import ARGON2_PROFILES
from tests.unit.world import PEPPER, World


@pytest.fixture
def world() -> Iterator[World]:
    w = World()
    yield w
    w.close()


def test_a_request_is_admitted_while_its_wait_stays_under_the_bound() -> None:
    hasher = CodeHasher(ARGON2_PROFILES["test"], PEPPER, threads=2, max_wait=0.1)
    hasher._hash_seconds = 0.01  # as if a hash took 10 ms
    held = []
    try:
        for _ in range(100):
            admission = hasher.admit("start")
            try:
                admission.__enter__()
            except Overloaded:
                break
            held.append(admission)
        # Two threads, 10 ms a hash: the 22nd admitted waits 10 rounds (100 ms), the 23rd
        # would wait 110 ms.
        assert len(held) == 22
        assert hasher.saturated
        held.pop().__exit__(None, None, None)
        assert not hasher.saturated
    finally:
        for admission in held:
            admission.__exit__(None, None, None)
        hasher.shutdown()
    assert hasher.expected_wait == 0


async def test_a_shed_check_costs_no_attempt_and_a_shed_start_sends_nothing(
    world: World,
) -> None:
    view = await world.start()
    world.hasher._max_wait = -1.0  # saturated
    with pytest.raises(Overloaded):
        await world.verify("000000", id=view.id)
    with pytest.raises(Overloaded):
        await world.start("+48601000009")
    with pytest.raises(Overloaded):
        await world.sending.resend(world.acme, view.id)
    world.hasher._max_wait = 0.1
    assert (await world.managing.read(world.acme, view.id)).attempts_left == 5
    assert len(world.queue.jobs) == 1
    assert (await world.verify(world.queue.code_to(), id=view.id)).valid is True


def test_checks_are_admitted_past_the_bound_that_sheds_starts() -> None:
    hasher = CodeHasher(ARGON2_PROFILES["test"], PEPPER, threads=1, max_wait=0.1)
    hasher._hash_seconds = 0.01
    held = []
    try:
        for _ in range(11):  # 10 waiting rounds: starts shed past here
            admission = hasher.admit("start")
            admission.__enter__()
            held.append(admission)
        assert hasher.saturated_for("start")
        with pytest.raises(Overloaded):
            hasher.admit("resend").__enter__()
        for _ in range(20):  # a check still gets in, up to three times the bound
            admission = hasher.admit("verify")
            admission.__enter__()
            held.append(admission)
        assert hasher.saturated_for("verify")
        with pytest.raises(Overloaded):
            hasher.admit("verify").__enter__()
    finally:
        for admission in held:
            admission.__exit__(None, None, None)
        hasher.shutdown()
    assert hasher.expected_wait == 0


async def test_a_request_leaves_the_queue_once_its_hash_is_done() -> None:
    hasher = CodeHasher(ARGON2_PROFILES["test"], PEPPER, threads=1, max_wait=0.1)
    try:
        with hasher.admit("start"):
            assert hasher._admitted == 1
            await hasher.hash_code_async("123456", b"\0" * 16)
            # Its Redis writes after the hash do not count as waiting for argon2.
            assert hasher._admitted == 0
        assert hasher._admitted == 0
    finally:
        hasher.shutdown()
