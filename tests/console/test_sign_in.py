"""Signing in to the console against a real Redis: sessions kept server-side with an idle
timeout, the sign-in limit, CSRF on every form, and the security headers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from litestar.testing import AsyncTestClient
from redis.asyncio import Redis

from otpservice.app import create_app
from otpservice.usecases.console_access import IDLE_MS, USER_FAILURES
from tests.console import support
from tests.console.conftest import Console
from tests.console.support import csrf_token


def cookie_attributes(response: Any, name: str) -> str:
    headers = [h for h in response.headers.get_list("set-cookie") if h.startswith(name + "=")]
    assert headers, response.headers
    return headers[0].lower()


async def test_a_page_without_a_session_sends_the_user_to_sign_in(console: Console) -> None:
    response = await console.client.get("/console/overview", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/console/login"


async def test_signing_in_opens_a_server_side_session_that_idles_out(
    console: Console, redis: Redis
) -> None:
    response = await console.sign_in("alice")
    assert response.status_code == 303
    cookie = cookie_attributes(response, "otp_console")
    assert "httponly" in cookie
    assert "samesite=strict" in cookie
    assert "path=/console" in cookie
    assert "secure" not in cookie  # development over http; production sets it (unit test)
    session_id = console.client.cookies["otp_console"]
    stored = [k async for k in redis.scan_iter(match="otp2:{console}:s:*")]
    assert len(stored) == 1
    assert session_id.encode() not in stored[0]  # only a keyed digest of the id is stored
    assert 0 < await redis.pttl(stored[0]) <= IDLE_MS
    fields = await redis.hgetall(stored[0])
    assert fields[b"u"] == b"alice"
    assert b"alice-password" not in b"".join(fields.values())
    assert (await console.client.get("/console/")).status_code == 200

    await redis.pexpire(stored[0], 1)  # the idle timeout passes
    await redis.delete(stored[0])
    response = await console.client.get("/console/", follow_redirects=False)
    assert response.status_code == 303


async def test_a_session_past_its_absolute_end_is_over_even_when_active(
    console: Console, redis: Redis
) -> None:
    await console.sign_in("alice")
    [stored] = [k async for k in redis.scan_iter(match="otp2:{console}:s:*")]
    await redis.hset(stored, "e", "1")
    response = await console.client.get("/console/", follow_redirects=False)
    assert response.status_code == 303
    assert not await redis.exists(stored)


async def test_signing_out_ends_the_session_in_redis(console: Console, redis: Redis) -> None:
    await console.sign_in("alice")
    page = await console.client.get("/console/")
    response = await console.client.post(
        "/console/logout", data={"_csrf_token": csrf_token(page.text)}, follow_redirects=False
    )
    assert response.status_code == 303
    assert [k async for k in redis.scan_iter(match="otp2:{console}:s:*")] == []
    assert (await console.client.get("/console/", follow_redirects=False)).status_code == 303


async def test_a_wrong_password_and_an_unknown_name_get_the_same_answer(console: Console) -> None:
    wrong = await console.sign_in("alice", "not-her-password")
    unknown = await console.client.post(
        "/console/login",
        data={"name": "mallory", "password": "whatever-it-is", "_csrf_token": console.token},
    )
    assert wrong.status_code == unknown.status_code == 401
    assert "Wrong name or password." in wrong.text
    assert "Wrong name or password." in unknown.text
    assert "otp_console" not in console.client.cookies


async def test_failed_sign_ins_are_limited_per_name_even_with_the_right_password(
    console: Console, redis: Redis
) -> None:
    for _ in range(USER_FAILURES):
        assert (await console.sign_in("alice", "guess-guess-guess")).status_code == 401
    refused = await console.sign_in("alice")
    assert refused.status_code == 429
    assert "Too many failed sign-ins" in refused.text
    counters = [k async for k in redis.scan_iter(match="otp2:{console}:l*")]
    assert counters
    for key in counters:
        assert 0 < await redis.pttl(key) <= 15 * 60_000
    # Another user is not locked out by alice's attacker (the IP limit is higher).
    assert (await console.sign_in("bob")).status_code == 303


async def test_a_right_password_gives_its_attempt_back(console: Console) -> None:
    for _ in range(USER_FAILURES - 1):
        await console.sign_in("alice", "guess-guess-guess")
    assert (await console.sign_in("alice")).status_code == 303
    for _ in range(USER_FAILURES - 1):
        assert (await console.sign_in("alice", "guess-guess-guess")).status_code == 401


async def test_a_form_without_its_csrf_token_is_refused(console: Console) -> None:
    await console.sign_in("alice")
    for data in (
        {"q": "+48601234567"},
        {"q": "+48601234567", "_csrf_token": "0" * 128},
        {"q": "+48601234567", "_csrf_token": "é" * 130},
    ):
        response = await console.client.post("/console/lookup", data=data)
        assert response.status_code == 403, data
        assert response.headers["content-type"].startswith("text/html")
        assert "security token" in response.text
    refused = await console.client.post("/console/login", data={"name": "alice", "password": "x"})
    assert refused.status_code == 403


async def test_only_html_forms_are_taken(console: Console) -> None:
    await console.sign_in("alice")
    json_body = await console.client.post("/console/lookup", json={"q": "+48601234567"})
    assert json_body.status_code == 415
    multipart = await console.client.post(
        "/console/lookup", files={"_csrf_token": ("t", b"x" * 130)}, data={"q": "1"}
    )
    assert multipart.status_code == 415
    put = await console.client.put("/console/lookup", content=b"")
    assert put.status_code == 405


async def test_every_console_response_carries_the_security_headers(console: Console) -> None:
    responses = [
        await console.client.get("/console/login"),
        await console.client.get("/console/", follow_redirects=False),
        await console.client.post("/console/lookup", data={"q": "1"}),  # 403: no token
        await console.client.get("/console/static/console.css"),
    ]
    for response in responses:
        csp = response.headers["content-security-policy"]
        assert "default-src 'self'" in csp
        assert "script-src 'none'" in csp
        assert "frame-ancestors 'none'" in csp
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["referrer-policy"] == "no-referrer"
        assert response.headers["cache-control"] == "no-store"


async def test_an_unknown_console_address_is_a_page_not_an_api_problem(console: Console) -> None:
    for path in ("/console/nope", "/console/lookup/extra/parts"):
        response = await console.client.get(path)
        assert response.status_code == 404
        assert response.headers["content-type"].startswith("text/html")
        assert "Not found" in response.text
        assert "content-security-policy" in response.headers
    # The API's own unknown addresses stay problem+json.
    api = await console.client.get("/nope")
    assert api.status_code == 404
    assert api.headers["content-type"].startswith("application/problem+json")


async def test_the_api_is_untouched_by_the_console(console: Console) -> None:
    response = await console.client.post(
        "/otp/start", json={"to": "12"}, headers={"Authorization": "Bearer console-key-acme"}
    )
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("application/problem+json")
    assert "content-security-policy" not in response.headers
    schema = (await console.client.get("/schema/openapi.json")).json()
    assert not any(path.startswith("/console") for path in schema["paths"])


async def test_the_console_is_not_there_when_turned_off(
    console_settings: Any, redis: Redis
) -> None:
    app = create_app(console_settings(OTP_CONSOLE="off"))
    async with AsyncTestClient(app=app) as client:
        assert (await client.get("/console/login")).status_code == 404


async def test_changing_a_users_password_ends_their_sessions(
    console: Console, console_settings: Any, tmp_path: Path, redis: Redis
) -> None:
    await console.sign_in("alice")
    session = console.client.cookies["otp_console"]
    rotated = tmp_path / "rotated.toml"
    rotated.write_text(support.console_toml(strong=support.cheap_hash("a-brand-new-password")))
    app = create_app(console_settings(OTP_CONFIG_FILE=str(rotated)))
    async with AsyncTestClient(app=app) as client:
        client.cookies.set("otp_console", session, path="/console")
        assert (await client.get("/console/", follow_redirects=False)).status_code == 303
