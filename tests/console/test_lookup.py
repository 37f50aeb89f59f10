"""Looking a number or an id up against a real Redis: the verifications newest first with
their SMS explained, only within the user's tenants, never a code, every lookup audited."""

from __future__ import annotations

import re

from redis.asyncio import Redis

from otpservice.store import keys
from otpservice.store.console import AUDIT_KEPT_MS
from tests.console.conftest import Console
from tests.console.support import OTHER_KEY, assert_no_code

NUMBER = "+48601234567"


async def undelivered_then_delivered(console: Console, to: str = NUMBER) -> str:
    started = await console.start(to)
    await console.report(to, started["id"], 1, "UNDELIV", "034")
    assert (await console.resend(started["id"])).status_code == 200  # at once: undelivered
    await console.report(to, started["id"], 2, "DELIVRD")
    return str(started["id"])


async def test_a_number_in_any_spelling_shows_an_undelivered_sms_and_a_delivered_resend(
    console: Console,
) -> None:
    verification_id = await undelivered_then_delivered(console)
    await console.sign_in("alice")
    for spelling in ("+48 601 234 567", "0048-601-234-567", "48601234567", "(+48) 601.234.567"):
        page = await console.lookup(spelling)
        assert page.status_code == 200, spelling
        html = page.text
        assert verification_id in html
        assert "The operator could not deliver the SMS (UNDELIV, 034)" in html
        assert "the operator reports the phone unreachable" in html
        assert "A newer SMS replaced this one" in html
        assert re.search(r"Delivered (under 0\.1 s|[0-9.]+ s) after the request: the code", html)
        assert "+•••••••••67" in html
        assert "601234567" not in html
        assert "601 234 567" not in html
        assert_no_code(html.replace(verification_id, ""), console.codes_sent())


async def test_an_undelivered_latest_sms_says_what_to_tell_the_user(console: Console) -> None:
    started = await console.start(NUMBER)
    await console.report(NUMBER, started["id"], 1, "UNDELIV", "034")
    await console.sign_in("alice")
    html = (await console.lookup(NUMBER)).text
    assert "Ask the user to check signal; a new code can be sent now." in html


async def test_a_submitted_sms_without_a_report_says_so_after_a_while(
    console: Console, redis: Redis
) -> None:
    started = await console.start(NUMBER)
    await console.sign_in("alice")
    assert "waiting for the operator" in (await console.lookup(NUMBER)).text
    # Make the SMS ten minutes older (the events are the store's record of its times).
    [events_key] = [k async for k in redis.scan_iter(match="otp2:*:e:*")]
    old = (await redis.get(events_key)).decode()
    older = re.sub(r'"at":(\d+)', lambda m: f'"at":{int(m.group(1)) - 600_000}', old)
    await redis.set(events_key, older, keepttl=True)
    html = (await console.lookup(NUMBER)).text
    assert "No delivery report after 10 minutes: the operator has not confirmed delivery." in html
    assert started["id"] in html


async def test_the_numbers_verifications_come_newest_first(console: Console) -> None:
    first = await console.start(NUMBER)
    await console.client.post(
        f"/otp/{first['id']}/cancel", headers={"Authorization": "Bearer console-key-acme"}
    )
    second = await console.start(NUMBER)
    await console.sign_in("alice")
    html = (await console.lookup(NUMBER)).text
    assert html.index(second["id"]) < html.index(first["id"])
    assert "Canceled by the application" in html


async def test_an_approved_verification_says_there_is_nothing_to_do(console: Console) -> None:
    started = await console.start(NUMBER)
    code = console.code_for(NUMBER)
    assert (await console.verify(started["id"], code)).json()["valid"] is True
    await console.sign_in("alice")
    html = (await console.lookup(NUMBER)).text
    assert "Approved" in html
    assert "Nothing to do: this verification succeeded." in html
    assert "1 of 5" in html  # checks used
    assert_no_code(html.replace(started["id"], ""), [code])


async def test_an_id_is_found_in_any_of_the_users_tenants(console: Console) -> None:
    started = await console.start(NUMBER)
    await console.sign_in("carol")  # acme and other: the form's tenant is other
    html = (await console.lookup(started["id"].upper(), tenant="other")).text
    assert started["id"] in html
    assert "tenant acme" in html


async def test_another_tenants_user_sees_nothing_of_it(console: Console) -> None:
    started = await console.start(NUMBER)
    await console.sign_in("bob")  # other only
    by_number = await console.lookup(NUMBER)
    assert by_number.status_code == 200
    assert "No verification of this number" in by_number.text
    assert started["id"] not in by_number.text
    by_id = await console.lookup(started["id"])
    assert "No verification with this id" in by_id.text
    forced = await console.client.post(
        "/console/lookup", data={"q": NUMBER, "tenant": "acme", "_csrf_token": console.token}
    )
    assert forced.status_code == 404
    assert started["id"] not in forced.text
    for page in ("/console/overview?tenant=acme", "/console/audit?tenant=acme"):
        assert (await console.client.get(page)).status_code == 404


async def test_the_other_tenants_own_verification_of_the_number_is_theirs_alone(
    console: Console,
) -> None:
    mine = await console.start(NUMBER, key=OTHER_KEY)
    acme = await console.start(NUMBER)
    await console.sign_in("bob")
    html = (await console.lookup(NUMBER)).text
    assert mine["id"] in html
    assert acme["id"] not in html


async def test_every_lookup_is_audited_for_30_days_with_the_number_masked(
    console: Console, redis: Redis
) -> None:
    started = await console.start(NUMBER)
    await console.sign_in("alice")
    await console.lookup(NUMBER)
    await console.lookup(started["id"])
    stream = keys.console_audit("acme")
    entries = await redis.xrange(stream)
    assert [e[1][b"u"] for e in entries] == [b"alice", b"alice"]
    assert entries[0][1][b"q"] == "+•••••••••67".encode()
    assert entries[1][1][b"q"] == started["id"].encode()
    assert 0 < await redis.pttl(stream) <= AUDIT_KEPT_MS
    page = (await console.client.get("/console/audit")).text
    assert "alice" in page
    assert "+•••••••••67" in page
    assert started["id"] in page
    assert "601234567" not in page


async def test_the_audit_page_shows_only_the_users_tenants(console: Console) -> None:
    await console.start(NUMBER)
    await console.sign_in("alice")
    await console.lookup(NUMBER)
    await console.sign_in("bob")
    assert "+•••••••••67" not in (await console.client.get("/console/audit")).text


async def test_nonsense_is_explained_not_an_error(console: Console) -> None:
    await console.sign_in("alice")
    for query in ("hello", "+999", "+48 60", "x" * 300, "%00", "+4860123456789012345678901"):
        response = await console.lookup(query)
        assert response.status_code == 400, query
        assert "phone number" in response.text
    for page in (
        "/console/overview?tenant=",
        "/console/overview?tenant=%00",
        "/console/audit?tenant=x",
    ):
        assert (await console.client.get(page)).status_code in (200, 404), page
