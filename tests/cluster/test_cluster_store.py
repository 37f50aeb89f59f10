"""The store on a real 3-master Redis Cluster: keys spread over every master, each verification's
keys in one slot, and scripts reloaded on whichever node lost them (NOSCRIPT)."""

from __future__ import annotations

import hashlib
from pathlib import Path

from litestar.testing import AsyncTestClient
from redis.asyncio.cluster import RedisCluster

from otpservice.app import create_app
from otpservice.providers.sandbox import SandboxGateway
from otpservice.store.scripts import script_source
from tests.cluster.conftest import HEADERS, next_code, service_settings
from tests.support.redis_servers import LocalCluster

CHECK_BEGIN = hashlib.sha1(script_source("check_begin").encode(), usedforsecurity=False).hexdigest()


async def test_verifications_spread_over_every_master_one_slot_each(
    cluster_backend: LocalCluster, tmp_path: Path
) -> None:
    admin: RedisCluster = cluster_backend.client()
    await admin.flushall()
    sms = SandboxGateway(echo=False)
    app = create_app(service_settings(cluster_backend.url, tmp_path), gateway=sms)
    numbers = [f"+4860123{i:04d}" for i in range(24)]
    try:
        async with AsyncTestClient(app=app) as client:
            for number in numbers:
                started = await client.post("/otp/start", json={"to": number}, headers=HEADERS)
                assert started.status_code == 201, started.text

            # The scripts vanish from every node; the next calls reload them where needed.
            await admin.execute_command("SCRIPT FLUSH", target_nodes=RedisCluster.PRIMARIES)
            assert await admin.script_exists(CHECK_BEGIN) == [False]
            for number in numbers:
                code = await next_code(sms, number)
                checked = await client.post(
                    "/otp/verify", json={"to": number, "code": code}, headers=HEADERS
                )
                assert checked.status_code == 200, checked.text
                assert checked.json()["valid"] is True

        # Reloaded (SCRIPT LOAD goes to every master) after the first NOSCRIPT.
        assert await admin.script_exists(CHECK_BEGIN) == [True]
        slots_by_tag: dict[str, set[int]] = {}
        nodes_used: set[str] = set()
        async for raw in admin.scan_iter(match="otp2:{*", count=1000):
            key = raw.decode()
            tag = key[key.index("{") + 1 : key.index("}")]
            slot = await admin.cluster_keyslot(key)
            slots_by_tag.setdefault(tag, set()).add(slot)
            nodes_used.add(admin.get_node_from_key(key).name)
        assert len(slots_by_tag) >= len(numbers)
        assert all(len(slots) == 1 for slots in slots_by_tag.values())
        assert len(nodes_used) == 3, f"24 numbers landed on {len(nodes_used)} of 3 masters"
    finally:
        await admin.aclose()
