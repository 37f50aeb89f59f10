"""Redis stopped (SIGSTOP) or killed under load: the API answers 503 fast, never hangs and never
500s, /healthz stays up and /readyz says not ready; when Redis is back the same process serves
again, and what Redis held before the outage still works."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable

import httpx
import pytest

from tests.faults.api import (
    Outcome,
    accepted_sms,
    client,
    load,
    start,
    started,
    verify,
    wait_until,
)
from tests.integration.conftest import assert_problem, retry_after
from tests.support.fake_provider import FakeProvider, Inbox
from tests.support.processes import ServiceProcess
from tests.support.redis_servers import RedisServer

pytestmark = pytest.mark.faults

OUTAGE_SECONDS = 2.5
FAST_FAILURE_SECONDS = 1.5


@pytest.mark.parametrize("outage", ["sigstop", "sigkill"])
async def test_redis_down_under_load_gives_fast_503s_and_the_service_recovers_by_itself(
    outage: str,
    inbox: Inbox,
    redis_process: RedisServer,
    make_provider: Callable[[str], FakeProvider],
    launch: Callable[..., ServiceProcess],
) -> None:
    service = launch("a", make_provider("p"))
    pid = service.pid
    async with client(service.url) as http:
        # Before the outage: a verification whose SMS went out.
        before = await started(http)
        before_sms = await accepted_sms(inbox, before["id"])

        if outage == "sigstop":
            redis_process.pause()
        else:
            redis_process.kill()
        down_until = time.monotonic() + OUTAGE_SECONDS

        def over() -> bool:
            return time.monotonic() >= down_until

        starts, healthz, readyz = await asyncio.gather(
            load(lambda: start(http), until_=over, concurrency=6),
            load(lambda: http.get("/healthz"), until_=over, concurrency=1),
            load(lambda: http.get("/readyz"), until_=over, concurrency=1),
        )

        # Every start failed fast with the documented 503, none hung, none was a 500.
        assert len(starts) >= 10, "the load did not run"
        for outcome in starts:
            assert outcome.error is None, f"{outcome.error!r} after {outcome.seconds:.2f} s"
            assert outcome.response is not None
            assert_problem(outcome.response, 503, "service_unavailable")
            retry_after(outcome.response)
            assert outcome.seconds < FAST_FAILURE_SECONDS, f"a 503 took {outcome.seconds:.2f} s"
        # The process stays alive and says it is not ready, both at once.
        assert healthz, "no /healthz probe ran"
        assert readyz, "no /readyz probe ran"
        for outcome in healthz + readyz:
            assert outcome.error is None, repr(outcome.error)
            assert outcome.seconds < FAST_FAILURE_SECONDS, f"a probe took {outcome.seconds:.2f} s"
        assert {o.status for o in healthz} == {200}
        for outcome in readyz:
            assert outcome.response is not None
            assert_problem(outcome.response, 503, "service_unavailable")

        # Redis comes back (the same server resumed, or a new one on the same port and AOF).
        if outage == "sigstop":
            redis_process.resume()
        else:
            await asyncio.to_thread(redis_process.start)
        back = await wait_until("a start to succeed again", lambda: _start_ok(http), timeout=15)
        assert service.running(), "the service died"
        assert service.pid == pid
        assert (await http.get("/readyz")).status_code == 200

        # A full round trip through the recovered process: stored, sent, verified.
        after_sms = await accepted_sms(inbox, back["id"])
        checked = await verify(http, back["id"], after_sms.code())
        assert checked.json()["valid"] is True, checked.text
        # What Redis held before the outage survived it.
        checked = await verify(http, before["id"], before_sms.code())
        assert checked.json()["valid"] is True, checked.text

        # A start answered 503 stored and sent nothing.
        refused = {_number(o) for o in starts}
        await asyncio.sleep(1.0)
        stray = [s.to for s in inbox.snapshot() if s.to in refused]
        assert not stray, f"SMS sent to numbers whose start was refused: {stray}"


async def _start_ok(http: httpx.AsyncClient) -> dict[str, object] | None:
    response = await start(http)
    if response.status_code == 201:
        body: dict[str, object] = response.json()
        return body
    assert_problem(response, 503, "service_unavailable")
    return None


def _number(outcome: Outcome) -> str:
    assert outcome.response is not None
    return str(json.loads(outcome.response.request.content)["to"])


async def test_once_redis_is_back_no_request_fails_on_a_connection_of_the_old_server(
    redis_process: RedisServer,
    make_provider: Callable[[str], FakeProvider],
    launch: Callable[..., ServiceProcess],
) -> None:
    """Redis killed and restarted (AOF): /readyz is 200 again, and then no request at all may
    fail. Once, a 40-way burst of reads a few seconds later met the pool's connections to the
    old server: a dozen 503s."""
    # A burst of 40 checks must not be shed for load here: this is about connections.
    service = launch("a", make_provider("p"), OTP_HASH_QUEUE_SECONDS="10")
    async with client(service.url, timeout=10) as http:
        ids = [(await started(http))["id"] for _ in range(40)]
        # Fill the connection pool: as many connections as requests at once.
        warm = await asyncio.gather(*(http.get(f"/otp/{i}") for i in ids))
        assert {r.status_code for r in warm} == {200}

        redis_process.kill()
        await asyncio.to_thread(redis_process.start)
        await wait_until("/readyz to answer 200", lambda: _ready(http), timeout=15)
        await asyncio.sleep(2.0)

        # Checks first: a script that must not run twice is never retried on a dead
        # connection, so only the pool's check before use keeps these from failing.
        checks = await asyncio.gather(*(verify(http, i, "000000") for i in ids))
        assert {r.status_code for r in checks} == {200}, [r.text for r in checks]
        reads = await asyncio.gather(*(http.get(f"/otp/{i}") for i in ids))
        assert [r.status_code for r in reads] == [200] * len(ids), [r.text for r in reads]
        starts = await asyncio.gather(*(start(http) for _ in ids))
        assert {r.status_code for r in starts} == {201}, [r.text for r in starts]


async def _ready(http: httpx.AsyncClient) -> bool:
    return (await http.get("/readyz")).status_code == 200
