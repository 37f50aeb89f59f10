"""Tenant event webhooks end to end: a local receiver checks every event with the
`standardwebhooks` library, sees each type, gets every event after it was down for a while,
and gets the events a killed process had queued (and claimed) from the process that followed."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
from standardwebhooks.webhooks import Webhook

from otpservice.events import EVENT_TYPES
from tests.integration.conftest import API_KEY, PEPPER, metric_value, tenant_toml
from tests.support.ports import free_port
from tests.support.processes import ServiceProcess
from tests.support.redis_servers import RedisServer

SECRET = "whsec_" + base64.b64encode(b"s" * 32).decode()
FAST = {
    "OTP_EVENTS_POLL_SECONDS": "0.05",
    "OTP_EVENTS_RETRY_MIN_SECONDS": "0.1",
    "OTP_EVENTS_RETRY_MAX_SECONDS": "0.3",
    "OTP_EVENTS_TIMEOUT_SECONDS": "1",
    "OTP_EVENTS_LEASE_SECONDS": "3",
}
ROOMY_COUNTRY = {"country": {"floor_day": 1000, "floor_hour": 1000}}


class Receiver:
    """A tenant's endpoint on 127.0.0.1: keeps what it is sent, answers `status`."""

    def __init__(self) -> None:
        self.status = 204
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.refused = 0
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                with receiver._lock:
                    status = receiver.status
                    if 200 <= status < 300:
                        receiver.received.append((dict(self.headers.items()), body))
                    else:
                        receiver.refused += 1
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def events(self) -> list[dict[str, Any]]:
        """Every event received, each checked with the standardwebhooks library."""
        verifier = Webhook(SECRET)
        with self._lock:
            received = list(self.received)
        out = []
        for headers, body in received:
            lower = {k.lower(): v for k, v in headers.items()}
            verified = verifier.verify(body, lower)  # raises on a bad signature or timestamp
            assert verified["id"] == lower["webhook-id"]
            out.append(verified)
        return out

    def unique(self) -> dict[str, dict[str, Any]]:
        """By webhook-id: what a receiver keeps after de-duplicating."""
        return {event["id"]: event for event in self.events()}


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    found = Receiver()
    yield found
    found.close()


async def wait_for(what: str, check: Callable[[], bool], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


def of_type(receiver: Receiver, kind: str) -> list[dict[str, Any]]:
    return [e for e in receiver.unique().values() if e["type"] == kind]


async def test_every_event_type_arrives_signed_with_the_verification_as_it_was(
    make_harness: Callable[..., Any], receiver: Receiver
) -> None:
    tenant = {"events_url": receiver.url, "events_secret": SECRET}
    policy = {"code_ttl_seconds": 3, "fraud": ROOMY_COUNTRY}
    async with make_harness(policy, reports="delivered=100", tenant=tenant, **FAST) as h:
        approved = (await h.start("+48601000001")).json()
        code = await h.code_for("+48601000001")
        assert (await h.verify(code, id=approved["id"])).json()["valid"] is True
        canceled = (await h.start("+48602000002")).json()
        await h.client.post(f"/otp/{canceled['id']}/cancel", headers=h.headers)
        failed = (await h.start("+48603000003")).json()
        wrong = "000000" if await h.code_for("+48603000003") != "000000" else "111111"
        for _ in range(5):
            await h.verify(wrong, id=failed["id"])
        expired = (await h.start("+48604000004")).json()
        for i in range(4):  # the prefix's hour floor is 3: the fourth blocks it
            await h.start(f"+44740012{i:04d}")

        expected = {
            approved["id"]: "verification.approved",
            canceled["id"]: "verification.canceled",
            failed["id"]: "verification.failed",
            expired["id"]: "verification.expired",
        }

        def verification_events() -> dict[str, dict[str, Any]]:
            return {
                e["data"]["id"]: e
                for e in receiver.unique().values()
                if e["type"] in expected.values() and e["data"]["id"] in expected
            }

        def everything() -> bool:
            types = {e["type"] for e in receiver.unique().values()}
            found = {i: e["type"] for i, e in verification_events().items()}
            return types >= set(EVENT_TYPES) and found == expected

        await wait_for("every event type, and one of each verification", everything)
        by_id = verification_events()
        assert by_id[approved["id"]]["type"] == "verification.approved"
        assert by_id[approved["id"]]["data"]["status"] == "approved"
        assert by_id[canceled["id"]]["data"]["status"] == "canceled"
        assert by_id[failed["id"]]["type"] == "verification.failed"
        assert by_id[failed["id"]]["data"]["attempts_left"] == 0
        assert by_id[expired["id"]]["type"] == "verification.expired"
        assert by_id[expired["id"]]["data"]["status"] == "expired"
        # The data is the Verification object without its events.
        assert set(by_id[approved["id"]]["data"]) == set(approved)
        assert "events" not in by_id[approved["id"]]["data"]["delivery"]

        deliveries = [
            e for e in of_type(receiver, "delivery.updated") if e["data"]["id"] == approved["id"]
        ]
        statuses = {e["data"]["delivery_event"]["status"] for e in deliveries}
        assert {"submitted", "delivered"} <= statuses
        [blocked] = of_type(receiver, "fraud.blocked")
        assert blocked["data"]["block"]["id"] == "prefix:+447400"
        assert blocked["data"]["block"]["rule"] == "prefix_budget"
        # Never a code, in any event.
        for event in receiver.events():
            assert code not in json.dumps(event)
            assert "code" not in event["data"]
        # Each event is what the OpenAPI document's `webhooks` say it is.
        document = (await h.client.get("/schema/openapi.json")).json()
        assert set(document["webhooks"]) == set(EVENT_TYPES)
        for event in receiver.events():
            operation = document["webhooks"][event["type"]]["post"]
            schema = operation["requestBody"]["content"]["application/json"]["schema"]
            jsonschema.validate(
                event,
                {**schema, "components": document["components"]},
                format_checker=jsonschema.FormatChecker(),
            )


async def test_a_receiver_down_for_a_while_gets_every_event_once_it_is_back(
    make_harness: Callable[..., Any], receiver: Receiver
) -> None:
    tenant = {"events_url": receiver.url, "events_secret": SECRET}
    async with make_harness({}, tenant=tenant, **FAST) as h:
        before = await metric_value(
            h.client, "otp_event_delivery_failures_total", reason="http_5xx"
        )
        receiver.status = 503
        ids = []
        for i in range(5):
            started = (await h.start(f"+48601000{i:03d}")).json()
            await h.client.post(f"/otp/{started['id']}/cancel", headers=h.headers)
            ids.append(started["id"])
        await wait_for("several refused attempts", lambda: receiver.refused >= 10)
        after = await metric_value(h.client, "otp_event_delivery_failures_total", reason="http_5xx")
        assert after - before >= 10
        backlog = await metric_value(h.client, "otp_events_backlog")
        assert backlog >= 5
        receiver.status = 200
        await wait_for(
            "every canceled event",
            lambda: (
                {e["data"]["id"] for e in of_type(receiver, "verification.canceled")} == set(ids)
            ),
        )
        # Delivered events leave the outbox: the backlog drains to zero.
        deadline = time.monotonic() + 10
        while await metric_value(h.client, "otp_events_backlog") > 0:
            assert time.monotonic() < deadline, "the outbox did not drain"
            await asyncio.sleep(0.1)


@pytest.fixture
def service_env(
    redis_server: RedisServer, redis: object, tmp_path: Path, receiver: Receiver
) -> dict[str, str]:
    config = tmp_path / "otp.toml"
    config.write_text(
        tenant_toml("acme", API_KEY, {}, events_url=receiver.url, events_secret=SECRET)
    )
    return {
        **os.environ,
        **FAST,
        "OTP_EVENTS_LEASE_SECONDS": "2",
        "OTP_REDIS_URL": redis_server.url,
        "OTP_PEPPER": "base64:" + PEPPER,
        "OTP_CONFIG_FILE": str(config),
        "OTP_ARGON2_PROFILE": "test",
        "OTP_SANDBOX_ECHO": "false",
    }


def test_events_a_killed_process_held_are_delivered_by_the_next_one(
    service_env: dict[str, str], receiver: Receiver, tmp_path: Path
) -> None:
    receiver.status = 503  # the first process claims the events but cannot deliver them
    first = ServiceProcess(
        "first",
        {**service_env, "OTP_PORT": str(free_port())},
        log_path=tmp_path / "first.log",
    )
    first.start()
    try:
        first.wait_ready()
        headers = {"Authorization": f"Bearer {API_KEY}"}
        ids = []
        with httpx.Client(base_url=first.url, headers=headers, timeout=5) as client:
            for i in range(3):
                started = client.post("/otp/start", json={"to": f"+48601000{i:03d}"}).json()
                assert client.post(f"/otp/{started['id']}/cancel").status_code == 200
                ids.append(started["id"])
        deadline = time.monotonic() + 10
        while receiver.refused < 3:
            assert time.monotonic() < deadline, "the first process never tried to deliver"
            time.sleep(0.05)
    finally:
        first.kill()  # SIGKILL: no hand-back, its claims simply lapse
    receiver.status = 204
    second = ServiceProcess(
        "second",
        {**service_env, "OTP_PORT": str(free_port())},
        log_path=tmp_path / "second.log",
    )
    second.start()
    try:
        second.wait_ready()
        deadline = time.monotonic() + 15
        while {e["data"]["id"] for e in of_type(receiver, "verification.canceled")} != set(ids):
            assert time.monotonic() < deadline, second.logs()
            time.sleep(0.05)
    finally:
        second.stop()
