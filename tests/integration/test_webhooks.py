"""Provider delivery-report webhooks against a real Redis, as MessageFlow and Flowstates post them.

Each report is checked as a client sees it (`GET /otp/{id}`: the delivery status and its events),
as the resend rules see it (an undelivered SMS lifts the cooldown, a delivered one does not) and
as an SRE sees it (/metrics). Forged, malformed and oversized bodies must leave Redis untouched.
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from litestar.testing import AsyncTestClient
from redis.asyncio import Redis

from otpservice.app import create_app
from otpservice.providers.sandbox import SandboxGateway
from otpservice.settings import Settings
from tests.integration.conftest import (
    WEBHOOK_SECRETS,
    Harness,
    assert_problem,
    metric_value,
    redis_contents,
)
from tests.integration.stores import sms_ref

NUMBER = "+48601234567"
OTHER_NUMBER = "+48601234568"
MF_SECRET = WEBHOOK_SECRETS["OTP_MESSAGEFLOW_WEBHOOK_SECRET"]
FS_SECRET = WEBHOOK_SECRETS["OTP_FLOWSTATES_WEBHOOK_SECRET"]
MAX_REPORT_BYTES = 256 * 1024


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def basic(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


MF_AUTH = bearer(MF_SECRET)


async def post_report(
    harness: Harness,
    body: Any,
    *,
    provider: str = "messageflow",
    headers: dict[str, str] | None = None,
    content_type: str | None = None,
) -> Any:
    """POST a report: `body` as JSON, or as raw bytes/str with `content_type`."""
    sent = dict(MF_AUTH if headers is None else headers)
    url = f"/webhooks/{provider}"
    if isinstance(body, bytes | str):
        if content_type is not None:
            sent["Content-Type"] = content_type
        return await harness.client.post(url, content=body, headers=sent)
    return await harness.client.post(url, json=body, headers=sent)


async def send_one(harness: Harness, to: str = NUMBER) -> tuple[str, str]:
    """Start a verification, let the lane submit it: (verification id, its SMS's externalId)."""
    started = await harness.start(to)
    assert started.status_code == 201, started.text
    verification_id = started.json()["id"]
    await harness.settle()
    sent = harness.gateway.last_to(to)
    assert sent is not None
    assert sent.external_id == sms_ref(verification_id, started.json()["sends"])
    body = await read(harness, verification_id)
    assert body["delivery"]["status"] == "submitted"
    return verification_id, sent.external_id


async def read(harness: Harness, verification_id: str) -> dict[str, Any]:
    got = await harness.client.get(f"/otp/{verification_id}", headers=harness.headers)
    assert got.status_code == 200, got.text
    body: dict[str, Any] = got.json()
    return body


def without_time(event: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in event.items() if k != "at"}


def report_event(
    status: str, raw: str | None, error: str | None = None, send: int = 1
) -> dict[str, Any]:
    return {
        "status": status,
        "send": send,
        "provider": "messageflow",
        "provider_status": raw,
        "error_code": error,
    }


async def resend(harness: Harness, verification_id: str) -> Any:
    return await harness.client.post(f"/otp/{verification_id}/resend", headers=harness.headers)


@pytest.fixture
async def mf(make_harness: Callable[..., Any]) -> AsyncIterator[Harness]:
    """A harness with the MessageFlow and Flowstates webhook secrets configured."""
    # A per-IP bucket refills within 0.5 s at the default 120/min, and its key then expires,
    # which "nothing changed" snapshots would misread; 10/min keeps it for seconds.
    policy = {"limits": {"starts_per_ip_per_minute": 10}}
    async with make_harness(policy, **WEBHOOK_SECRETS) as harness:
        yield harness


# --- Body shapes --------------------------------------------------------------------------------


async def test_a_json_object_report_marks_the_sms_delivered(mf: Harness) -> None:
    verification_id, external_id = await send_one(mf)
    answer = await post_report(mf, {"externalId": external_id, "status": "Delivered"})
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"recorded": 1, "unmatched": 0}
    body = await read(mf, verification_id)
    assert body["delivery"]["status"] == "delivered"
    events = body["delivery"]["events"]
    assert [e["status"] for e in events] == ["queued", "submitted", "delivered"]
    assert without_time(events[-1]) == report_event("delivered", "Delivered")


async def test_a_list_of_reports_applies_every_one(mf: Harness) -> None:
    first_id, first_ext = await send_one(mf, NUMBER)
    second_id, second_ext = await send_one(mf, OTHER_NUMBER)
    answer = await post_report(
        mf,
        [
            {"externalId": first_ext, "status": "DELIVRD"},
            {"externalId": second_ext, "status": "UNDELIV", "errorCode": "E42"},
        ],
    )
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"recorded": 2, "unmatched": 0}
    first, second = await read(mf, first_id), await read(mf, second_id)
    assert first["delivery"]["status"] == "delivered"
    assert without_time(first["delivery"]["events"][-1]) == report_event("delivered", "DELIVRD")
    assert second["delivery"]["status"] == "undelivered"
    assert without_time(second["delivery"]["events"][-1]) == report_event(
        "undelivered", "UNDELIV", "E42"
    )


async def test_a_data_wrapped_list_of_reports_is_read(mf: Harness) -> None:
    verification_id, external_id = await send_one(mf)
    answer = await post_report(
        mf, {"data": [{"externalId": external_id, "status": "expired", "errorCode": "27"}]}
    )
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"recorded": 1, "unmatched": 0}
    body = await read(mf, verification_id)
    assert body["delivery"]["status"] == "expired"
    assert without_time(body["delivery"]["events"][-1]) == report_event("expired", "expired", "27")


async def test_a_form_encoded_report_is_read(mf: Harness) -> None:
    verification_id, external_id = await send_one(mf)
    answer = await post_report(
        mf,
        f"externalId={external_id}&status=REJECTD&errorCode=0x0B",
        content_type="application/x-www-form-urlencoded",
    )
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"recorded": 1, "unmatched": 0}
    body = await read(mf, verification_id)
    assert body["delivery"]["status"] == "rejected"
    assert without_time(body["delivery"]["events"][-1]) == report_event(
        "rejected", "REJECTD", "0x0B"
    )


# --- Status words -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        ("Delivered", "delivered"),
        ("DELIVERED", "delivered"),
        ("delivered", "delivered"),
        ("DELIVRD", "delivered"),
        ("Undelivered", "undelivered"),
        ("UNDELIVERED", "undelivered"),
        ("UNDELIV", "undelivered"),
        ("Expired", "expired"),
        ("EXPIRED", "expired"),
        ("Rejected", "rejected"),
        ("REJECTD", "rejected"),
        # Kannel-style DLR codes, as numbers or as text.
        (1, "delivered"),
        ("2", "undelivered"),
        (16, "rejected"),
    ],
)
async def test_status_words_in_any_case_smpp_words_and_codes_are_understood(
    mf: Harness, raw: str | int, status: str
) -> None:
    verification_id, external_id = await send_one(mf)
    answer = await post_report(mf, {"externalId": external_id, "status": raw, "errorCode": "000"})
    assert answer.json() == {"recorded": 1, "unmatched": 0}
    body = await read(mf, verification_id)
    assert body["delivery"]["status"] == status
    assert without_time(body["delivery"]["events"][-1]) == report_event(status, str(raw), "000")


async def test_an_unknown_status_is_recorded_as_unknown_and_moves_nothing(mf: Harness) -> None:
    verification_id, external_id = await send_one(mf)
    before = await metric_value(
        mf.client, "otp_dlr_total", provider="messageflow", status="unknown"
    )
    answer = await post_report(mf, {"externalId": external_id, "status": "WOBBLY"})
    assert answer.json() == {"recorded": 1, "unmatched": 0}
    body = await read(mf, verification_id)
    assert body["delivery"]["status"] == "submitted"
    assert without_time(body["delivery"]["events"][-1]) == report_event("unknown", "WOBBLY")
    after = await metric_value(mf.client, "otp_dlr_total", provider="messageflow", status="unknown")
    assert after == before + 1


# --- The first terminal status wins -------------------------------------------------------------


async def test_the_first_terminal_status_wins_over_a_later_one(mf: Harness) -> None:
    verification_id, external_id = await send_one(mf)
    await post_report(mf, {"externalId": external_id, "status": "DELIVRD"})
    answer = await post_report(mf, {"externalId": external_id, "status": "UNDELIV"})
    assert answer.json() == {"recorded": 1, "unmatched": 0}
    body = await read(mf, verification_id)
    assert body["delivery"]["status"] == "delivered"
    # The late report is kept as an event, for the record; it moved nothing.
    assert [e["status"] for e in body["delivery"]["events"]] == [
        "queued",
        "submitted",
        "delivered",
        "undelivered",
    ]


async def test_a_duplicated_report_changes_nothing_and_adds_no_event(
    mf: Harness, redis: Redis
) -> None:
    verification_id, external_id = await send_one(mf)
    report = {"externalId": external_id, "status": "DELIVRD", "errorCode": "000"}
    await post_report(mf, report)
    delivered = await read(mf, verification_id)
    snapshot = await redis_contents(redis)
    again = await post_report(mf, report)
    assert again.status_code == 200, again.text
    assert again.json() == {"recorded": 1, "unmatched": 0}
    assert await redis_contents(redis) == snapshot
    body = await read(mf, verification_id)
    assert body["delivery"] == delivered["delivery"]
    assert [e["status"] for e in body["delivery"]["events"]] == ["queued", "submitted", "delivered"]


async def test_a_retried_batch_of_reports_adds_no_events(mf: Harness, redis: Redis) -> None:
    """A provider that got no answer posts the same batch again: each report is a duplicate."""
    verification_id, external_id = await send_one(mf)
    batch = [
        {"externalId": external_id, "status": "ENROUTE"},
        {"externalId": external_id, "status": "DELIVRD"},
    ]
    first = await post_report(mf, batch)
    assert first.json() == {"recorded": 2, "unmatched": 0}
    delivered = await read(mf, verification_id)
    assert [e["status"] for e in delivered["delivery"]["events"]] == [
        "queued",
        "submitted",
        "submitted",
        "delivered",
    ]
    snapshot = await redis_contents(redis)
    again = await post_report(mf, batch)
    assert again.status_code == 200, again.text
    body = await read(mf, verification_id)
    assert body["delivery"] == delivered["delivery"]
    assert await redis_contents(redis) == snapshot


@pytest.mark.parametrize("raw", ["ENROUTE", "accepted", "submitted", "queued", "BUFFERED", 8])
async def test_an_intermediate_report_never_overwrites_a_terminal_one(
    mf: Harness, raw: str | int
) -> None:
    verification_id, external_id = await send_one(mf)
    await post_report(mf, {"externalId": external_id, "status": "UNDELIV"})
    first = await read(mf, verification_id)
    answer = await post_report(mf, {"externalId": external_id, "status": raw})
    assert answer.json() == {"recorded": 1, "unmatched": 0}
    body = await read(mf, verification_id)
    assert body["delivery"]["status"] == "undelivered"
    assert body["delivery"]["updated_at"] == first["delivery"]["updated_at"]
    assert len(body["delivery"]["events"]) == len(first["delivery"]["events"]) + 1


# --- Reports the service cannot use -------------------------------------------------------------


async def test_a_report_for_an_unknown_message_is_acknowledged_ignored_and_counted(
    mf: Harness, redis: Redis
) -> None:
    verification_id, external_id = await send_one(mf)
    ours = external_id.rpartition("-")[0]
    # A well-formed reference that was never issued, a send this verification never made,
    # references that are not ours at all, and our own spelled with digits that only look like
    # ASCII ones (Arabic-Indic, superscript) or with a trailing newline.
    unknown = "a" * len(ours)
    refs = [
        f"{unknown}-1", f"{ours}-5", "not-one-of-ours", "12345",
        f"{ours}-\u0661", f"{ours}-\u00b9", f"{ours}-1\n", f"{ours}\n-1",
    ]  # fmt: skip
    snapshot = await redis_contents(redis)
    for ref in refs:
        before = await metric_value(mf.client, "otp_dlr_unmatched_total", provider="messageflow")
        answer = await post_report(mf, {"externalId": ref, "status": "DELIVRD"})
        assert answer.status_code == 200, answer.text
        assert answer.json() == {"recorded": 0, "unmatched": 1}
        after = await metric_value(mf.client, "otp_dlr_unmatched_total", provider="messageflow")
        assert after == before + 1, ref
    assert await redis_contents(redis) == snapshot
    assert (await read(mf, verification_id))["delivery"]["status"] == "submitted"


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"this is not json", "application/json"),
        (b'{"externalId": ', "application/json"),
        (b"[]", "application/json"),
        (b'{"foo": 1}', "application/json"),
        (b'{"data": []}', "application/json"),
        (b"[1, 2]", "application/json"),
        (b'"DELIVRD"', "application/json"),
        (b"status=DELIVRD", "application/x-www-form-urlencoded"),
        (b"", None),
    ],
)
async def test_a_body_that_is_not_a_report_is_400(
    mf: Harness, redis: Redis, body: bytes, content_type: str | None
) -> None:
    verification_id, _ = await send_one(mf)
    snapshot = await redis_contents(redis)
    answer = await post_report(mf, body, content_type=content_type)
    assert_problem(answer, 400, "invalid_request")
    assert await redis_contents(redis) == snapshot
    assert (await read(mf, verification_id))["delivery"]["status"] == "submitted"


# --- Authentication -----------------------------------------------------------------------------


def _forgeries() -> list[Any]:
    return [
        pytest.param({}, id="no-authorization"),
        pytest.param(bearer("mf-hook-secreT"), id="wrong-bearer"),
        pytest.param(bearer(MF_SECRET + "x"), id="longer-bearer"),
        pytest.param(bearer(""), id="empty-bearer"),
        pytest.param(basic("messageflow", "wrong"), id="wrong-basic-password"),
        pytest.param(basic(MF_SECRET, "wrong"), id="secret-as-user-but-wrong-password"),
        pytest.param(basic("nobody", ""), id="wrong-basic-user-no-password"),
        pytest.param(bearer(FS_SECRET), id="flowstates-secret-as-bearer"),
        pytest.param(basic("flowstates", FS_SECRET), id="flowstates-secret-as-basic"),
        pytest.param({"Authorization": MF_SECRET}, id="secret-without-scheme"),
        pytest.param({"Authorization": f"Token {MF_SECRET}"}, id="unknown-scheme"),
        pytest.param({"Authorization": "Basic %%%not-base64"}, id="basic-not-base64"),
        pytest.param({"X-Api-Key": MF_SECRET}, id="secret-in-another-header"),
    ]


@pytest.mark.parametrize("headers", _forgeries())
async def test_a_forged_report_is_401_and_changes_nothing(
    mf: Harness, redis: Redis, headers: dict[str, str]
) -> None:
    verification_id, external_id = await send_one(mf)
    snapshot = await redis_contents(redis)
    events = (await read(mf, verification_id))["delivery"]["events"]
    answer = await post_report(
        mf, {"externalId": external_id, "status": "UNDELIV"}, headers=headers
    )
    assert_problem(answer, 401, "unauthorized")
    assert await redis_contents(redis) == snapshot
    body = await read(mf, verification_id)
    assert body["delivery"]["status"] == "submitted"
    assert body["delivery"]["events"] == events
    # The forged UNDELIV did not open the way to another send.
    assert (await resend(mf, verification_id)).status_code == 429


async def test_a_report_signed_with_the_sandbox_secret_is_refused_on_messageflow(
    mf: Harness, redis: Redis
) -> None:
    sandbox_secret = mf.app.state.settings.provider.webhook_secrets["sandbox"].reveal().decode()
    _, external_id = await send_one(mf)
    snapshot = await redis_contents(redis)
    answer = await post_report(
        mf, {"externalId": external_id, "status": "DELIVRD"}, headers=bearer(sandbox_secret)
    )
    assert_problem(answer, 401, "unauthorized")
    assert await redis_contents(redis) == snapshot


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param(basic("messageflow", MF_SECRET), id="basic-password"),
        pytest.param(basic(MF_SECRET, ""), id="basic-user-empty-password"),
        pytest.param({"Authorization": f"bearer {MF_SECRET}"}, id="bearer-lower-case-scheme"),
    ],
)
async def test_the_secret_is_accepted_as_basic_credentials_too(
    mf: Harness, headers: dict[str, str]
) -> None:
    verification_id, external_id = await send_one(mf)
    answer = await post_report(
        mf, {"externalId": external_id, "status": "DELIVRD"}, headers=headers
    )
    assert answer.status_code == 200, answer.text
    assert (await read(mf, verification_id))["delivery"]["status"] == "delivered"


# --- Size and routes ----------------------------------------------------------------------------


async def test_a_body_over_256_kib_is_413_and_changes_nothing(mf: Harness, redis: Redis) -> None:
    verification_id, external_id = await send_one(mf)
    report = {"externalId": external_id, "status": "DELIVRD", "note": ""}
    overhead = len(str(report).encode())
    snapshot = await redis_contents(redis)
    big = await post_report(mf, {**report, "note": "x" * (MAX_REPORT_BYTES + 1 - overhead + 64)})
    assert_problem(big, 413, "payload_too_large")
    assert await redis_contents(redis) == snapshot
    assert (await read(mf, verification_id))["delivery"]["status"] == "submitted"
    # The webhook's own limit, not the client API's 16 KiB, applies: a large report still fits.
    fits = await post_report(mf, {**report, "note": "x" * (MAX_REPORT_BYTES - overhead - 1024)})
    assert fits.status_code == 200, fits.text
    assert (await read(mf, verification_id))["delivery"]["status"] == "delivered"


async def test_an_unknown_provider_route_is_refused(mf: Harness) -> None:
    verification_id, external_id = await send_one(mf)
    answer = await post_report(
        mf, {"externalId": external_id, "status": "DELIVRD"}, provider="nosuch"
    )
    assert answer.status_code in (400, 404), answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert (await read(mf, verification_id))["delivery"]["status"] == "submitted"


async def test_a_provider_without_a_configured_secret_has_no_webhook(
    make_harness: Callable[..., Any], redis: Redis
) -> None:
    only_mf = {"OTP_MESSAGEFLOW_WEBHOOK_SECRET": MF_SECRET}
    async with make_harness(**only_mf) as harness:
        verification_id, external_id = await send_one(harness)
        snapshot = await redis_contents(redis)
        for headers in ({}, bearer(FS_SECRET), bearer(MF_SECRET), bearer("")):
            answer = await post_report(
                harness,
                {"messageId": external_id, "externalId": external_id, "status": "DELIVRD"},
                provider="flowstates",
                headers=headers,
            )
            # Not "verification_not_found": it is the route that is not there.
            body = assert_problem(answer, 404, "not_found")
            assert "flowstates" in body["detail"]
        assert await redis_contents(redis) == snapshot
        assert (await read(harness, verification_id))["delivery"]["status"] == "submitted"


async def test_without_any_webhook_secret_the_messageflow_route_is_404(
    make_harness: Callable[..., Any],
) -> None:
    async with make_harness() as harness:
        verification_id, external_id = await send_one(harness)
        answer = await post_report(harness, {"externalId": external_id, "status": "DELIVRD"})
        assert_problem(answer, 404, "not_found")
        assert (await read(harness, verification_id))["delivery"]["status"] == "submitted"


async def test_the_sandbox_route_is_refused_when_the_provider_is_not_the_sandbox(
    make_harness: Callable[..., Any], redis: Redis
) -> None:
    real_provider = {
        "OTP_PROVIDER": "messageflow",
        "OTP_MESSAGEFLOW_PRIORITY_BASE_URL": "https://messageflow.invalid",
        "OTP_MESSAGEFLOW_PRIORITY_API_KEY": "mf-api-key",
        "OTP_MESSAGEFLOW_PRIORITY_APP_KEY": "mf-app-key",
    }
    # The test still hands the app a sandbox gateway, so nothing leaves the machine.
    async with make_harness(**real_provider, **WEBHOOK_SECRETS) as harness:
        settings: Settings = harness.app.state.settings
        assert settings.provider.name == "messageflow"
        secret = settings.provider.webhook_secrets["sandbox"].reveal().decode()
        started = (await harness.start()).json()
        await harness.settle()
        sent = harness.gateway.last_to(NUMBER)
        assert sent is not None
        snapshot = await redis_contents(redis)
        answer = await post_report(
            harness,
            {"externalId": sent.external_id, "status": "UNDELIV"},
            provider="sandbox",
            headers=bearer(secret),
        )
        assert answer.status_code == 404, answer.text
        assert await redis_contents(redis) == snapshot
        assert (await read(harness, started["id"]))["delivery"]["status"] == "submitted"


# --- Resend cooldown ----------------------------------------------------------------------------


@pytest.mark.parametrize("raw", ["UNDELIV", "Expired", "REJECTD", "failed", 2, 16])
async def test_a_failed_delivery_lifts_the_resend_cooldown(mf: Harness, raw: str | int) -> None:
    verification_id, external_id = await send_one(mf)
    assert (await resend(mf, verification_id)).status_code == 429
    await post_report(mf, {"externalId": external_id, "status": raw})
    resent = await resend(mf, verification_id)
    assert resent.status_code == 200, resent.text
    assert resent.json()["sends"] == 2
    await mf.settle()
    sent = mf.gateway.last_to(NUMBER)
    assert sent is not None
    assert sent.external_id == sms_ref(verification_id, 2)


@pytest.mark.parametrize("raw", ["DELIVRD", "Delivered", 1, "ENROUTE", "WOBBLY"])
async def test_a_delivered_or_pending_report_keeps_the_cooldown(
    mf: Harness, raw: str | int
) -> None:
    verification_id, external_id = await send_one(mf)
    await post_report(mf, {"externalId": external_id, "status": raw})
    resent = await resend(mf, verification_id)
    assert_problem(resent, 429, "resend_too_soon")


async def test_a_late_failure_after_delivered_keeps_the_cooldown(mf: Harness) -> None:
    verification_id, external_id = await send_one(mf)
    await post_report(mf, {"externalId": external_id, "status": "DELIVRD"})
    await post_report(mf, {"externalId": external_id, "status": "UNDELIV"})
    assert_problem(await resend(mf, verification_id), 429, "resend_too_soon")


async def test_a_report_for_an_old_send_adds_an_event_but_moves_nothing(mf: Harness) -> None:
    verification_id, first_ext = await send_one(mf)
    await post_report(mf, {"externalId": first_ext, "status": "UNDELIV"})
    resent = await resend(mf, verification_id)
    assert resent.status_code == 200, resent.text
    await mf.settle()
    second = mf.gateway.last_to(NUMBER)
    assert second is not None
    assert second.external_id == sms_ref(verification_id, 2)
    before = await read(mf, verification_id)
    assert before["delivery"]["status"] == "submitted"

    # Send 1 reports again (a different, failing status): an event for send 1, nothing else.
    answer = await post_report(mf, {"externalId": first_ext, "status": "EXPIRED"})
    assert answer.json() == {"recorded": 1, "unmatched": 0}
    body = await read(mf, verification_id)
    assert body["delivery"]["status"] == "submitted"
    assert body["delivery"]["updated_at"] == before["delivery"]["updated_at"]
    assert without_time(body["delivery"]["events"][-1]) == report_event("expired", "EXPIRED")
    # An old send's failure does not lift the cooldown of the current one.
    assert_problem(await resend(mf, verification_id), 429, "resend_too_soon")

    # A delivered report for send 1 does not mark send 2 delivered either.
    await post_report(mf, {"externalId": first_ext, "status": "DELIVRD"})
    assert (await read(mf, verification_id))["delivery"]["status"] == "submitted"

    # The current send's own report still moves it.
    await post_report(mf, {"externalId": second.external_id, "status": "DELIVRD"})
    body = await read(mf, verification_id)
    assert body["delivery"]["status"] == "delivered"
    assert without_time(body["delivery"]["events"][-1]) == report_event(
        "delivered", "DELIVRD", send=2
    )


# --- Metrics ------------------------------------------------------------------------------------


async def _delivery_metrics(harness: Harness, status: str) -> tuple[float, float]:
    dlrs = await metric_value(
        harness.client, "otp_dlr_total", provider="messageflow", status=status
    )
    seconds = await metric_value(
        harness.client,
        "otp_delivery_seconds_count",
        provider="messageflow",
        status=status,
        country="PL",
    )
    return dlrs, seconds


async def test_a_first_terminal_report_is_counted_once(mf: Harness) -> None:
    _, external_id = await send_one(mf)
    dlrs, seconds = await _delivery_metrics(mf, "delivered")
    late_dlrs, late_seconds = await _delivery_metrics(mf, "undelivered")

    await post_report(mf, {"externalId": external_id, "status": "DELIVRD"})
    assert await _delivery_metrics(mf, "delivered") == (dlrs + 1, seconds + 1)

    # A duplicate is not a second delivery: the delivery time is observed once.
    await post_report(mf, {"externalId": external_id, "status": "DELIVRD"})
    assert (await _delivery_metrics(mf, "delivered"))[1] == seconds + 1

    # A late, losing terminal report is a report received, but no delivery time.
    await post_report(mf, {"externalId": external_id, "status": "UNDELIV"})
    assert await _delivery_metrics(mf, "undelivered") == (late_dlrs + 1, late_seconds)
    assert (await _delivery_metrics(mf, "delivered"))[1] == seconds + 1


async def test_an_intermediate_report_observes_no_delivery_time(mf: Harness) -> None:
    _, external_id = await send_one(mf)
    dlrs, seconds = await _delivery_metrics(mf, "submitted")
    await post_report(mf, {"externalId": external_id, "status": "ENROUTE"})
    assert await _delivery_metrics(mf, "submitted") == (dlrs + 1, seconds)


# --- Flowstates: matched by its own message id --------------------------------------------------


class FlowstatesStandIn(SandboxGateway):
    """The sandbox phone under Flowstates' name.

    The service remembers a provider's own message id under the name of the gateway that accepted
    the SMS (`record_send_outcome` keys it by `provider_name`, i.e. the gateway's `name`). With the
    plain sandbox gateway that name is "sandbox", so a Flowstates report could never find it: here
    the gateway calls itself "flowstates", and the whole path (lane -> remembered id -> webhook ->
    lookup) runs for real, with no hand-written Redis key.
    """

    name = "flowstates"


async def test_a_flowstates_report_is_matched_by_its_own_message_id(
    make_settings: Callable[..., Settings], redis: Redis
) -> None:
    gateway = FlowstatesStandIn(echo=False)
    app = create_app(make_settings(None, **WEBHOOK_SECRETS), gateway=gateway)
    async with AsyncTestClient(app=app) as client:
        harness = Harness(client, gateway)
        started = (await harness.start()).json()
        await harness.settle()
        sent = gateway.last_to(NUMBER)
        assert sent is not None
        assert sent.provider_message_id
        assert sent.provider_message_id not in sent.external_id

        # An id Flowstates never gave us is unmatched, and changes nothing.
        snapshot = await redis_contents(redis)
        stray = await post_report(
            harness,
            {"messageId": "sbx-0000000000000000", "status": "DELIVERED"},
            provider="flowstates",
            headers=bearer(FS_SECRET),
        )
        assert stray.json() == {"recorded": 0, "unmatched": 1}
        assert await redis_contents(redis) == snapshot

        # MessageFlow cannot address Flowstates' ids: the index is per provider.
        cross = await post_report(
            harness, {"externalId": sent.provider_message_id, "status": "UNDELIV"}
        )
        assert cross.json() == {"recorded": 0, "unmatched": 1}

        answer = await post_report(
            harness,
            {"id": "report-77", "messageId": sent.provider_message_id, "status": "UNDELIVERED"},
            provider="flowstates",
            headers=basic("flowstates", FS_SECRET),
        )
        assert answer.status_code == 200, answer.text
        assert answer.json() == {"recorded": 1, "unmatched": 0}
        body = await read(harness, started["id"])
        assert body["delivery"]["status"] == "undelivered"
        assert without_time(body["delivery"]["events"][-1]) == {
            "status": "undelivered",
            "send": 1,
            "provider": "flowstates",
            "provider_status": "UNDELIVERED",
            "error_code": None,
        }
