"""A service process SIGKILLed between answering a start and the provider taking the SMS: the
send lives on in Redis and another process sends it, at most twice, with a code that works."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from tests.faults.api import (
    PROVIDER,
    accepted_sms,
    client,
    reference,
    started,
    verify,
    wait_until,
)
from tests.integration.conftest import metric_value
from tests.support.fake_provider import FakeProvider, Inbox, slow
from tests.support.processes import ServiceProcess

pytestmark = pytest.mark.faults


@pytest.mark.parametrize("moment", ["while_the_provider_holds_the_sms", "once_start_answered"])
async def test_a_code_queued_by_a_killed_process_is_sent_by_another_and_verifies(
    moment: str,
    inbox: Inbox,
    make_provider: Callable[[str], FakeProvider],
    launch: Callable[..., ServiceProcess],
) -> None:
    # A's provider answers nothing for 5 s: whatever A submits is still unanswered when A dies.
    provider_a = make_provider("a")
    provider_a.behave(slow(5))
    a = launch("a", provider_a)
    async with client(a.url) as http:
        verification = await started(http)
    vid = verification["id"]
    if moment == "while_the_provider_holds_the_sms":
        await wait_until(
            "A to submit the SMS", lambda: inbox.for_reference(reference(vid)), timeout=5
        )
    a.kill()
    assert not a.running(), "A survived SIGKILL"
    assert not inbox.accepted(reference(vid)), "the SMS must not have left before A died"

    b = launch("b", make_provider("b"))
    async with client(b.url) as http:
        sms = await accepted_sms(inbox, vid, provider="b", timeout=20)
        assert sms.external_id == f"{reference(vid)}-1"
        assert sms.to == verification["to"]

        checked = await verify(http, vid, sms.code())
        assert checked.status_code == 200, checked.text
        assert checked.json()["valid"] is True
        assert checked.json()["status"] == "approved"

        # Nothing of it is left waiting to go out again.
        await wait_until("B's lane to empty", lambda: _lane_empty(http), timeout=10)
        accepted = inbox.accepted(reference(vid))
        assert 1 <= len(accepted) <= 2, [(s.provider, s.outcome) for s in accepted]
        assert {s.external_id for s in inbox.for_reference(reference(vid))} == {
            f"{reference(vid)}-1"
        }
        if moment == "while_the_provider_holds_the_sms":
            # A had taken the entry: B claimed it from A and counted that.
            assert await metric_value(http, "otp_lane_redeliveries_total", provider=PROVIDER) >= 1


async def _lane_empty(http: httpx.AsyncClient) -> bool:
    return await metric_value(http, "otp_lane_depth") == 0
