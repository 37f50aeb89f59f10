"""Concurrent checks: within the attempt budget, the right code approves whatever order the
checks finish in, and `failed` goes to the wrong check that uses up the budget.

Hypothesis draws a budget, how many wrong checks race the right one (or that all are wrong),
the order their first halves run (taking attempts, before hashing) and the order their second
halves run (approving or counting); each example runs against the real Lua scripts on a real
Redis, step by step, as interleaved requests would. An HTTP test then fires real concurrent
checks at the service.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from redis.asyncio import Redis

from otpservice.app import create_app
from otpservice.providers.sandbox import SandboxGateway
from otpservice.settings import Settings
from otpservice.store.client import StoreClient
from otpservice.store.connection import connect
from otpservice.store.verifications import RedisVerifications
from otpservice.usecases.memory import MemoryVerifications
from tests.cluster.conftest import next_code
from tests.integration.conftest import API_KEY
from tests.integration.stores import TENANT, fresh_tag, start
from tests.support.asgi import serving
from tests.support.ports import free_port


class Loop:
    def __init__(self, loop: asyncio.AbstractEventLoop, client: Redis) -> None:
        self.loop = loop
        self.client = client
        self.redis = RedisVerifications(StoreClient(client, timeout=5.0), "race-test")

    def run(self, coro: Any) -> Any:
        return self.loop.run_until_complete(coro)


@pytest.fixture(scope="module")
def loop(redis_server: Any) -> Iterator[Loop]:
    event_loop = asyncio.new_event_loop()
    client = connect(redis_server.url, 5.0)
    found = Loop(event_loop, client)
    yield found
    found.run(client.aclose())
    event_loop.close()


@st.composite
def races(draw: st.DrawFn) -> tuple[int, int, bool, list[int], list[int]]:
    """(budget, checks, one of them right, order of the first halves, of the second halves)."""
    budget = draw(st.integers(min_value=1, max_value=6))
    checks = draw(st.integers(min_value=1, max_value=budget))
    right = draw(st.booleans()) if checks < budget else True
    begins = draw(st.permutations(range(checks)))
    finishes = draw(st.permutations(range(checks)))
    return budget, checks, right, list(begins), list(finishes)


async def race(  # noqa: PLR0917 - the drawn race, as Hypothesis hands it over
    store: Any, budget: int, checks: int, right: bool, begins: list[int], finishes: list[int]
) -> None:
    """Check 0 carries the right code when `right`; every other check a wrong one."""
    tag = fresh_tag()
    ref = await start(store, tag, max_attempts=budget)
    window = {"failed_limit": 100, "failed_window_ms": 60_000}
    for _ in begins:
        begun = await store.check_begin(tenant=TENANT, tag=tag, rand=ref.rand, **window)
        assert begun.verdict == "ok"
    answers = {}
    for check in finishes:
        matched = 1 if (right and check == 0) else 0
        answers[check] = (await store.check_finish(ref, matched_send=matched)).verdict
    wrong = [answers[c] for c in range(checks) if not (right and c == 0)]
    if right:
        assert answers[0] == "approved", (answers, finishes)
        assert all(a in {"pending", "not_found"} for a in wrong), answers
        # Wrong checks that finished before the approval counted; later ones found it closed.
        assert "failed" not in wrong
    elif checks == budget:
        # Every attempt was wrong: the last of them to finish failed the verification.
        assert wrong[finishes[-1]] == "failed"
        assert sorted(wrong) == ["failed"] + ["pending"] * (checks - 1)
    else:
        assert set(wrong) == {"pending"}
    shown = await store.read(ref, tenant=TENANT)
    status = "approved" if right else ("failed" if checks == budget else "pending")
    assert shown.record.status == status


@settings(max_examples=80, deadline=None, database=None)
@given(drawn=races())
def test_the_right_code_wins_any_race_within_the_budget_in_redis(loop: Loop, drawn: Any) -> None:
    loop.run(race(loop.redis, *drawn))


@settings(max_examples=80, deadline=None, database=None)
@given(drawn=races())
def test_the_in_memory_store_keeps_the_same_rule(drawn: Any) -> None:
    asyncio.run(race(MemoryVerifications(), *drawn))


async def test_four_wrong_codes_racing_the_right_one_never_refuse_it(
    make_settings: Callable[..., Settings],
) -> None:
    """Through a real server (the in-process test client does not overlap requests so): real
    argon2 cost and a pool per check, so every check takes its attempt before any finishes."""
    settings = make_settings(OTP_ARGON2_PROFILE="default", OTP_HASH_THREADS="5")
    sms = SandboxGateway(echo=False)
    port = free_port()
    async with (
        serving(create_app(settings, gateway=sms), port),
        httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}",
            headers={"Authorization": f"Bearer {API_KEY}"},
            limits=httpx.Limits(max_connections=10),
            timeout=10,
        ) as http,
    ):
        for round_ in range(12):
            number = f"+4860155{round_:04d}"
            started = (await http.post("/otp/start", json={"to": number})).json()
            code = await next_code(sms, number)
            wrong = f"{(int(code) + 1) % 10**6:06d}"
            answers = await asyncio.gather(
                *(
                    http.post("/otp/verify", json={"id": started["id"], "code": c})
                    for c in (wrong, wrong, wrong, wrong, code)
                )
            )
            right = answers[-1]
            assert right.status_code == 200, (round_, right.text)
            assert right.json()["valid"] is True
            assert all(a.status_code in {200, 404} for a in answers[:4])
            assert all(a.json().get("status") != "failed" for a in answers[:4])
