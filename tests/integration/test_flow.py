"""The whole verification flow against a real Redis, as a login backend runs it."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from tests.integration.conftest import OTHER_KEY, Harness


def _at(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


async def test_start_sends_a_code_and_verify_approves_it_once(harness: Harness) -> None:
    started = await harness.start(client_ref="login-42")
    assert started.status_code == 201, started.text
    body = started.json()
    assert body["to"] == "+48601234567"
    assert body["status"] == "pending"
    assert body["channel"] == "sms"
    assert body["attempts_left"] == 5
    assert body["sends"] == 1
    assert body["sends_left"] == 4
    assert body["client_ref"] == "login-42"
    assert body["delivery"]["status"] == "queued"
    assert (_at(body["expires_at"]) - _at(body["created_at"])).total_seconds() == 600
    assert 29 <= (_at(body["resend_available_at"]) - _at(body["created_at"])).total_seconds() <= 31

    code = await harness.code_for()
    checked = await harness.verify(code, id=body["id"])
    assert checked.status_code == 200
    assert checked.json() == {
        "id": body["id"],
        "status": "approved",
        "valid": True,
        "attempts_left": 4,
    }

    again = await harness.verify(code, id=body["id"])
    assert again.status_code == 404
    assert again.json()["code"] == "verification_not_found"


async def test_a_code_can_be_checked_by_number(harness: Harness) -> None:
    started = (await harness.start()).json()
    code = await harness.code_for()
    checked = await harness.verify(code, to="+48 601 234 567")
    assert checked.json()["valid"] is True
    assert checked.json()["id"] == started["id"]


async def test_a_wrong_code_costs_an_attempt_and_the_last_one_fails_it(harness: Harness) -> None:
    started = (await harness.start()).json()
    code = await harness.code_for()
    wrong = "000000" if code != "000000" else "111111"
    for left in (4, 3, 2, 1):
        answer = (await harness.verify(wrong, id=started["id"])).json()
        assert answer == {
            "id": started["id"],
            "status": "pending",
            "valid": False,
            "attempts_left": left,
        }
    last = (await harness.verify(wrong, id=started["id"])).json()
    assert last == {"id": started["id"], "status": "failed", "valid": False, "attempts_left": 0}
    # Finished: even the right code is now refused, the same way as an unknown id.
    after = await harness.verify(code, id=started["id"])
    assert after.status_code == 404
    read = (await harness.client.get(f"/otp/{started['id']}", headers=harness.headers)).json()
    assert read["status"] == "failed"


async def test_a_malformed_code_is_refused_without_using_an_attempt(harness: Harness) -> None:
    started = (await harness.start()).json()
    for bad in ("12345", "1234567", "12a456", "١٢٣٤٥٦"):
        answer = await harness.verify(bad, id=started["id"])
        assert answer.status_code == 400
        assert answer.json()["code"] == "invalid_code_format"
    read = (await harness.client.get(f"/otp/{started['id']}", headers=harness.headers)).json()
    assert read["attempts_left"] == 5


async def test_start_for_a_pending_number_is_a_resend_on_the_same_verification(
    make_harness,
) -> None:
    async with make_harness({"resend_cooldown_seconds": 0}) as harness:
        first = (await harness.start()).json()
        first_code = await harness.code_for()
        second = await harness.start()
        assert second.status_code == 201
        assert second.json()["id"] == first["id"]
        assert second.json()["sends"] == 2
        second_code = await harness.code_for()
        if first_code != second_code:
            # The previous code stopped being valid.
            old = (await harness.verify(first_code, id=first["id"])).json()
            assert old["valid"] is False
        assert (await harness.verify(second_code, id=first["id"])).json()["valid"] is True


async def test_a_tenant_may_accept_the_previous_code(make_harness) -> None:
    async with make_harness({"resend_cooldown_seconds": 0, "accept_previous_code": True}) as h:
        first = (await h.start()).json()
        first_code = await h.code_for()
        resent = await h.client.post(f"/otp/{first['id']}/resend", headers=h.headers)
        assert resent.status_code == 200
        assert resent.json()["sends"] == 2
        assert (await h.verify(first_code, id=first["id"])).json()["valid"] is True


async def test_cancel_finishes_a_verification(harness: Harness) -> None:
    started = (await harness.start()).json()
    code = await harness.code_for()
    canceled = await harness.client.post(f"/otp/{started['id']}/cancel", headers=harness.headers)
    assert canceled.status_code == 200
    assert canceled.json()["status"] == "canceled"
    assert (await harness.verify(code, id=started["id"])).status_code == 404
    again = await harness.client.post(f"/otp/{started['id']}/cancel", headers=harness.headers)
    assert again.status_code == 404


async def test_get_shows_the_delivery_timeline_and_never_the_code(harness: Harness) -> None:
    started = (await harness.start()).json()
    code = await harness.code_for()
    read = await harness.client.get(f"/otp/{started['id']}", headers=harness.headers)
    assert read.status_code == 200
    body = read.json()
    statuses = [e["status"] for e in body["delivery"]["events"]]
    assert statuses == ["queued", "submitted"]
    assert body["delivery"]["status"] == "submitted"
    assert all(
        set(e) >= {"status", "at", "provider", "provider_status", "error_code"}
        for e in body["delivery"]["events"]
    )
    assert code not in read.text


async def test_another_tenant_cannot_see_or_use_a_verification(harness: Harness) -> None:
    started = (await harness.start()).json()
    code = await harness.code_for()
    other = {"X-Api-Key": OTHER_KEY}
    assert (await harness.client.get(f"/otp/{started['id']}", headers=other)).status_code == 404
    stolen = await harness.client.post(
        "/otp/verify", json={"id": started["id"], "code": code}, headers=other
    )
    assert stolen.status_code == 404
    assert (await harness.verify(code, id=started["id"])).json()["valid"] is True


async def test_ids_of_one_number_cannot_be_linked(harness: Harness) -> None:
    """Three verifications of one number, and one of another tenant: no id gives away that
    they share a phone (once, every id of a number began with the same 16 characters)."""
    ids = []
    for _ in range(3):
        started = (await harness.start("+48601234567")).json()
        ids.append(started["id"])
        await harness.client.post(f"/otp/{started['id']}/cancel", headers=harness.headers)
    other = await harness.client.post(
        "/otp/start", json={"to": "+48601234567"}, headers={"X-Api-Key": OTHER_KEY}
    )
    ids.append(other.json()["id"])
    assert len(set(ids)) == 4
    for i, first in enumerate(ids):
        for second in ids[i + 1 :]:
            shared = sum(1 for a, b in zip(first, second, strict=True) if a == b)
            # Two random 42-character base-32 strings share about 1.3 positions.
            assert shared < 12, (first, second)
            assert first[:6] != second[:6]
            assert first[-6:] != second[-6:]
    # Each still works for its own tenant, and an id of one tenant means nothing to another.
    assert (await harness.client.get(f"/otp/{ids[0]}", headers=harness.headers)).status_code == 200
    foreign = await harness.client.get(f"/otp/{ids[3]}", headers=harness.headers)
    assert foreign.status_code == 404


async def test_unknown_and_finished_ids_get_the_same_answer(harness: Harness) -> None:
    started = (await harness.start()).json()
    code = await harness.code_for()
    await harness.verify(code, id=started["id"])
    finished = await harness.verify(code, id=started["id"])
    unknown = await harness.verify(code, id="a" * 42)
    garbage = await harness.verify(code, id="not-an-id")
    by_number = await harness.verify(code, to="+48601234568")
    bodies = {r.text for r in (finished, unknown, garbage, by_number)}
    assert len(bodies) == 1
    assert {r.status_code for r in (finished, unknown, garbage, by_number)} == {404}


async def test_exactly_one_of_fifty_concurrent_right_checks_is_valid(make_harness) -> None:
    async with make_harness({"max_attempts": 20}) as harness:
        started = (await harness.start()).json()
        code = await harness.code_for()
        answers = await asyncio.gather(*(harness.verify(code, id=started["id"]) for _ in range(50)))
        valid = [a for a in answers if a.status_code == 200 and a.json()["valid"]]
        assert len(valid) == 1
        # Every other check lost the race and sees a finished verification.
        assert sorted(a.status_code for a in answers) == [200] + [404] * 49


async def test_a_start_works_after_redis_forgot_the_scripts(harness: Harness, redis) -> None:
    # A restarted or failed-over Redis has no scripts: the pipelined pre-check must reload them.
    assert (await harness.start()).status_code == 201
    await redis.script_flush()
    again = await harness.start(to="+48601234568")
    assert again.status_code == 201, again.text
    code = await harness.code_for("+48601234568")
    assert (await harness.verify(code, to="+48601234568")).json()["valid"] is True
