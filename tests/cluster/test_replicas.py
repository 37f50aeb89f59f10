"""Two replicas of the service on one Redis (one server, a cluster, a Sentinel-managed primary).

Each replica is a real app with its own lane and provider, served by uvicorn on its own loopback
port; they share nothing but Redis. A verification started on one is read, resent, checked and
matched with its delivery reports on the other, and the lane's work is shared: sends one replica
could not finish are sent by the other.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import msgspec

from otpservice.app import create_app
from otpservice.providers.base import SmsMessage, SubmitReceipt
from otpservice.providers.sandbox import ReportSimulator, SandboxGateway
from otpservice.settings import LaneSettings, parse_outcomes
from tests.cluster.conftest import HEADERS, next_code, service_settings, until
from tests.integration.stores import sms_ref
from tests.support.asgi import serving
from tests.support.ports import free_ports

NUMBER = "+48601234567"


async def test_a_verification_started_on_one_replica_is_served_by_the_other(
    backend: Any, tmp_path: Path
) -> None:
    settings = service_settings(backend.url, tmp_path, resend_cooldown_seconds=0)
    sms_a, sms_b = SandboxGateway(echo=False), SandboxGateway(echo=False)
    port_a, port_b = free_ports(2)
    a, b = f"http://127.0.0.1:{port_a}", f"http://127.0.0.1:{port_b}"
    # The provider reports A's sends to B's webhook: B must match a message that A sent.
    sms_a.reports = ReportSimulator(
        httpx.AsyncClient(timeout=5),
        url=f"{b}/webhooks/sandbox",
        secret=settings.provider.webhook_secrets["sandbox"].reveal().decode(),
        delay=0.05,
        outcomes=parse_outcomes("delivered=100"),
    )
    app_a = create_app(settings, gateway=sms_a)
    app_b = create_app(settings, gateway=sms_b)

    async with (
        serving(app_a, port_a),
        serving(app_b, port_b),
        httpx.AsyncClient(headers=HEADERS, timeout=5) as http,
    ):
        started = await http.post(f"{a}/otp/start", json={"to": NUMBER})
        assert started.status_code == 201, started.text
        vid = started.json()["id"]
        first_code = await next_code(sms_a, NUMBER)

        async def read(base: str) -> dict[str, Any]:
            got = await http.get(f"{base}/otp/{vid}")
            assert got.status_code == 200, got.text
            body: dict[str, Any] = got.json()
            return body

        # B reads A's verification, and sees the DLR that reached B for A's SMS.
        async def delivered_on_b() -> bool:
            return (await read(b))["delivery"]["status"] == "delivered"

        await until("the delivery report posted to B to be recorded", delivered_on_b)
        on_b = await read(b)
        assert on_b["to"] == NUMBER
        assert on_b["sends"] == 1

        # A wrong code checked on B costs an attempt that A sees.
        wrong = "000000" if first_code != "000000" else "111111"
        checked = await http.post(f"{b}/otp/verify", json={"id": vid, "code": wrong})
        assert checked.status_code == 200, checked.text
        assert checked.json()["valid"] is False
        assert (await read(a))["attempts_left"] == started.json()["attempts_left"] - 1

        # B resends through its own lane; the code it sent is the one A now accepts.
        resent = await http.post(f"{b}/otp/{vid}/resend")
        assert resent.status_code == 200, resent.text
        assert resent.json()["sends"] == 2
        second_code = await next_code(sms_b, NUMBER)
        if second_code != first_code:
            stale = await http.post(f"{a}/otp/verify", json={"id": vid, "code": first_code})
            assert stale.json()["valid"] is False
        approved = await http.post(f"{a}/otp/verify", json={"to": NUMBER, "code": second_code})
        assert approved.status_code == 200, approved.text
        assert approved.json() == {
            "id": vid,
            "status": "approved",
            "valid": True,
            "attempts_left": approved.json()["attempts_left"],
        }

        # Approved once, for both replicas.
        assert (await read(b))["status"] == "approved"
        again = await http.post(f"{b}/otp/verify", json={"id": vid, "code": second_code})
        assert again.status_code == 404, again.text


class _Stuck(SandboxGateway):
    """A provider that takes every SMS and never answers."""

    def __init__(self) -> None:
        super().__init__(echo=False)
        self.calls = 0

    async def submit(self, message: SmsMessage) -> SubmitReceipt:
        self.calls += 1
        await asyncio.sleep(3600)
        return await super().submit(message)


async def test_sends_one_replica_cannot_finish_are_sent_by_the_other(
    backend: Any, tmp_path: Path
) -> None:
    settings = msgspec.structs.replace(
        service_settings(backend.url, tmp_path),
        lane=LaneSettings(visibility_seconds=1.5, sweep_seconds=0.1),
        shutdown_deadline=2.0,
    )
    stuck, sms_b = _Stuck(), SandboxGateway(echo=False)
    port_a, port_b = free_ports(2)
    a, b = f"http://127.0.0.1:{port_a}", f"http://127.0.0.1:{port_b}"
    numbers = [f"+486012345{i:02d}" for i in range(5)]
    async with (
        serving(create_app(settings, gateway=sms_b), port_b),
        httpx.AsyncClient(headers=HEADERS, timeout=5) as http,
    ):
        async with serving(create_app(settings, gateway=stuck), port_a):
            ids = {}
            for number in numbers:
                started = await http.post(f"{a}/otp/start", json={"to": number})
                assert started.status_code == 201, started.text
                ids[number] = started.json()["id"]

            async def all_submitted() -> bool:
                return stuck.calls == len(numbers)

            await until("A to hand every SMS to its provider", all_submitted)
            # A is alive and renews its claims: past the visibility timeout B takes nothing.
            await asyncio.sleep(2.0)
            assert list(sms_b.outbox) == []
        # A has stopped: it handed its unfinished sends back, and B sends each of them once.
        for number in numbers:
            code = await next_code(sms_b, number, timeout=5)
            checked = await http.post(f"{b}/otp/verify", json={"id": ids[number], "code": code})
            assert checked.json()["valid"] is True, checked.text
        await asyncio.sleep(2.0)
        assert sorted(m.external_id for m in sms_b.outbox) == sorted(
            sms_ref(v) for v in ids.values()
        )
