"""A Sentinel failover under a running service: it follows the new primary by itself.

A verification is started, Sentinel promotes the replica (SENTINEL FAILOVER), and the code is
then checked through the same app: after at most a few 503s while the old connections drop,
the service answers from the promoted replica, which holds the verification. The failover is
asked for only once Sentinel could carry it out (LocalSentinel.wait_promotable): the replica
linked and caught up, and Sentinel's own view of it fresh, as Redis's and Valkey's Sentinel
both require; not after a fixed time.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
from redis.asyncio import Redis

from otpservice.app import create_app
from otpservice.providers.sandbox import SandboxGateway
from tests.cluster.conftest import HEADERS, next_code, service_settings, until
from tests.support.asgi import serving
from tests.support.binaries import redis_server_binary
from tests.support.ports import free_port
from tests.support.redis_servers import SERVICE, LocalSentinel, running

NUMBER = "+48601234567"


async def test_the_service_follows_a_sentinel_failover(tmp_path: Path) -> None:
    # A topology of its own: the failover changes it.
    with running("sentinel", redis_server_binary()) as topology:
        assert isinstance(topology, LocalSentinel)
        settings = service_settings(topology.url, tmp_path)
        sms = SandboxGateway(echo=False)
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        async with (
            serving(create_app(settings, gateway=sms), port),
            httpx.AsyncClient(headers=HEADERS, timeout=5) as http,
        ):
            started = await http.post(f"{base}/otp/start", json={"to": NUMBER})
            assert started.status_code == 201, started.text
            code = await next_code(sms, NUMBER)

            primary = topology.client()
            try:  # the replica has everything the service wrote
                assert await primary.execute_command("WAIT", 1, 2000) == 1
            finally:
                await primary.aclose()
            await asyncio.to_thread(topology.wait_promotable)

            await asyncio.to_thread(topology.sentinel_command, "failover", SERVICE)

            async def promoted() -> bool:
                found = await asyncio.to_thread(topology.primary_address)
                return found == ("127.0.0.1", topology.replica_port)

            async def old_primary_demoted() -> bool:
                old = Redis(port=topology.primary_port, socket_timeout=2)
                try:
                    return (await old.info("replication"))["role"] == "slave"
                finally:
                    await old.aclose()

            await until("the replica to be promoted", promoted, 20)
            # From here a write on the old primary fails: success below means the service moved.
            await until("the old primary to become a replica", old_primary_demoted, 20)

            async def checked() -> httpx.Response | None:
                got = await http.post(f"{base}/otp/verify", json={"to": NUMBER, "code": code})
                return got if got.status_code != 503 else None

            answer = await until("the service to answer from the new primary", checked, 15)
            assert answer.status_code == 200, answer.text
            assert answer.json()["valid"] is True
            read = await http.get(f"{base}/otp/{started.json()['id']}")
            assert read.json()["status"] == "approved"
