"""Codes expire in real time, and so does every key the service writes to Redis.

The code lifetime is set to 1-2 s by policy and the tests really sleep past it. (A code needs 2 s
to be sent at all: the lane drops a send with less than one whole second of validity left.)
"""

from __future__ import annotations

import asyncio

from redis.asyncio import Redis

from tests.integration.conftest import OTHER_KEY, Harness, assert_problem

NUMBER = "+48601234567"
DAY_MS = 86_400_000


async def _expire(harness: Harness, ttl: int) -> None:
    """Sleep past a code lifetime of `ttl` seconds (Redis time has millisecond resolution)."""
    await harness.settle()
    await asyncio.sleep(ttl + 0.1)


async def test_an_expired_code_is_refused_like_an_unknown_one(make_harness) -> None:
    async with make_harness({"code_ttl_seconds": 2}) as harness:
        started = (await harness.start()).json()
        code = await harness.code_for()
        await _expire(harness, 2)

        by_id = await harness.verify(code, id=started["id"])
        by_number = await harness.verify(code, to=NUMBER)
        unknown = await harness.verify(code, id="a" * 42)

        for refused in (by_id, by_number):
            assert_problem(refused, 404, "verification_not_found")
            assert refused.text == unknown.text


async def test_an_expired_verification_reads_as_expired_and_cannot_be_resent(
    make_harness,
) -> None:
    async with make_harness({"code_ttl_seconds": 1, "resend_cooldown_seconds": 0}) as harness:
        started = (await harness.start()).json()
        await _expire(harness, 1)

        read = await harness.client.get(f"/otp/{started['id']}", headers=harness.headers)
        assert read.status_code == 200, read.text
        assert read.json()["status"] == "expired"
        assert read.json()["resend_available_at"] is None

        resent = await harness.client.post(f"/otp/{started['id']}/resend", headers=harness.headers)
        assert_problem(resent, 404, "verification_not_found")
        canceled = await harness.client.post(
            f"/otp/{started['id']}/cancel", headers=harness.headers
        )
        assert_problem(canceled, 404, "verification_not_found")


async def test_a_start_after_expiry_creates_a_new_verification(make_harness) -> None:
    async with make_harness({"code_ttl_seconds": 2, "resend_cooldown_seconds": 0}) as harness:
        old = (await harness.start()).json()
        old_code = await harness.code_for()
        await _expire(harness, 2)

        fresh = await harness.start()
        assert fresh.status_code == 201, fresh.text
        body = fresh.json()
        assert body["id"] != old["id"]
        assert body["status"] == "pending"
        assert body["sends"] == 1
        assert body["attempts_left"] == old["attempts_left"]
        new_code = await harness.code_for()
        if new_code != old_code:
            assert (await harness.verify(old_code, to=NUMBER)).json()["valid"] is False
        assert (await harness.verify(new_code, id=body["id"])).json()["valid"] is True
        # The old one stays expired; it did not come back to life.
        read = await harness.client.get(f"/otp/{old['id']}", headers=harness.headers)
        assert read.json()["status"] == "expired"


async def test_every_key_the_service_writes_expires(make_harness, redis: Redis) -> None:
    policy = {"resend_cooldown_seconds": 0, "limits": {"failed_checks_per_number": 5}}
    async with make_harness(policy) as harness:
        # Touch every kind of state: verifications (a number's latest, and an earlier one moved
        # aside by a newer start), events, send buckets, the IP bucket, failed checks,
        # idempotency keys (done and freed), provider message ids.
        approved = (
            await harness.client.post(
                "/otp/start",
                json={"to": NUMBER},
                headers={**harness.headers, "Idempotency-Key": "login-1"},
            )
        ).json()
        await harness.client.post(f"/otp/{approved['id']}/resend", headers=harness.headers)
        code = await harness.code_for()
        wrong = "000000" if code != "000000" else "111111"
        await harness.verify(wrong, id=approved["id"])
        assert (await harness.verify(code, id=approved["id"])).json()["valid"] is True
        assert (await harness.start()).status_code == 201  # moves the approved one aside

        canceled = (await harness.start("+48601234568")).json()
        await harness.client.post(f"/otp/{canceled['id']}/cancel", headers=harness.headers)
        pending = (await harness.start("+48601234569")).json()
        await harness.verify(wrong, id=pending["id"])
        refused = await harness.client.post(
            "/otp/start",
            json={"to": "+48800123456"},
            headers={**harness.headers, "Idempotency-Key": "login-2"},
        )
        assert refused.status_code == 403
        other = await harness.client.post(
            "/otp/start", json={"to": NUMBER}, headers={"X-Api-Key": OTHER_KEY}
        )
        assert other.status_code == 201
        await harness.settle()

        keys = [key async for key in redis.scan_iter(count=1000)]
        # The session above really wrote every kind of key (else this test proves little).
        kinds = (b":c:", b":v:", b":e:", b":b:", b":f:", b":ip", b":idem", b":lane")
        assert all(any(kind in key for key in keys) for kind in kinds), sorted(keys)
        ttls = {key: await redis.pttl(key) for key in keys}
        # -1: the key never expires. -2: it vanished between SCAN and PTTL (it expired: fine).
        forever = sorted(key for key, ttl in ttls.items() if ttl == -1)
        assert forever == [], f"keys without a TTL: {forever}"
        too_long = sorted(key for key, ttl in ttls.items() if ttl > DAY_MS)
        assert too_long == [], f"keys kept longer than a day with default windows: {too_long}"
