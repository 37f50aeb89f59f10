"""SIGTERM under load, with a second process on the same Redis: every start that was answered
2xx gets its SMS (from the stopping process before it exits, or from the other one after the
hand-back), the process exits 0 within its deadline, and cut-off requests fail as connections,
never as 500s."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import httpx
import pytest

from tests.faults.api import accepted_sms, client, load, reference, start, verify
from tests.support.fake_provider import FakeProvider, Inbox, slow
from tests.support.processes import ServiceProcess

pytestmark = pytest.mark.faults

DEADLINE_SECONDS = 4
EXIT_SLACK_SECONDS = 1.0  # interpreter teardown after the server's own deadline
LOAD_BEFORE_SIGTERM = 1.5


async def test_sigterm_under_load_delivers_every_answered_start_and_exits_cleanly(
    inbox: Inbox,
    make_provider: Callable[[str], FakeProvider],
    launch: Callable[..., ServiceProcess],
) -> None:
    # A's provider takes 0.3 s per SMS and A sends 4 at a time: a backlog of sends builds in A.
    provider_a = make_provider("a")
    provider_a.behave(slow(0.3))
    timings = {
        "OTP_SHUTDOWN_DEADLINE_SECONDS": str(DEADLINE_SECONDS),
        "OTP_LANE_CONCURRENCY": "4",
    }
    a = launch("a", provider_a, **timings)
    b = launch("b", make_provider("b"), **timings)

    async with client(a.url) as to_a, client(b.url) as to_b:
        terminated_at: list[float] = []
        exited_at: list[float] = []

        async def stop_a_midway() -> None:
            await asyncio.sleep(LOAD_BEFORE_SIGTERM)
            # From now on A's provider holds every SMS far past A's deadline: what A has not
            # sent yet it can only hand back.
            provider_a.behave(slow(60))
            a.terminate()
            terminated_at.append(time.monotonic())
            deadline = time.monotonic() + DEADLINE_SECONDS + 10
            while a.running() and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
            exited_at.append(time.monotonic())

        def done() -> bool:
            # Keep loading A until it has been gone for a moment.
            return bool(exited_at) and time.monotonic() > exited_at[0] + 0.3

        outcomes, _ = await asyncio.gather(
            load(lambda: start(to_a), until_=done, concurrency=4, max_seconds=30),
            stop_a_midway(),
        )
        assert not a.running(), "A did not exit"
        took = exited_at[0] - terminated_at[0]
        assert took <= DEADLINE_SECONDS + EXIT_SLACK_SECONDS, f"A took {took:.1f} s to exit"

        answered = [o for o in outcomes if o.response is not None]
        statuses = sorted({o.status for o in answered if o.status != 201}, key=str)
        assert not statuses, f"A answered {statuses} under SIGTERM"
        unexpected = [o.error for o in outcomes if o.error and not _cut_off(o.error)]
        assert not unexpected, unexpected
        assert [o for o in outcomes if o.error], "no request was cut off: the load stopped early"
        in_flight = [o for o in answered if o.ended > terminated_at[0]]
        assert in_flight, "no request in flight at SIGTERM was finished"

        ids = [o.response.json()["id"] for o in answered if o.response is not None]
        assert len(ids) >= 10, f"only {len(ids)} starts answered: too little load to judge"
        for vid in ids:
            await accepted_sms(inbox, vid, timeout=20)
        handed_over = {s.reference for s in inbox.accepted() if s.provider == "b"}
        assert handed_over, "B sent nothing: A finished everything, nothing was handed back"
        for vid in ids:
            accepted = inbox.accepted(reference(vid))
            assert 1 <= len(accepted) <= 2, f"{vid} was accepted {len(accepted)} times"
            assert {s.external_id for s in accepted} == {f"{reference(vid)}-1"}
        # The SMS that B sent for A carry the codes A stored.
        for vid in [v for v in ids if reference(v) in handed_over][:5]:
            checked = await verify(to_b, vid, inbox.accepted(reference(vid))[0].code())
            assert checked.json()["valid"] is True, checked.text
    # Last, so that a wrong exit status does not hide how the sends fared.
    assert a.returncode == 0, f"A exited with {a.returncode}"


def _cut_off(error: Exception) -> bool:
    """A request the stopping server refused or closed: a transport error, not an answer."""
    return isinstance(error, httpx.TransportError)
