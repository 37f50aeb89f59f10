"""The overview's counters, kept by the request path's own scripts (no extra round trip) in
the number's slot, and the overview drawn from them."""

from __future__ import annotations

from redis.asyncio import Redis

from otpservice.ids import Identifiers
from otpservice.settings import Secret
from otpservice.store import keys
from tests.console.conftest import Console
from tests.console.test_lookup import NUMBER, undelivered_then_delivered


async def stats_fields(redis: Redis, kind: str) -> dict[str, int]:
    found: dict[str, int] = {}
    async for key in redis.scan_iter(match=f"otp2:*:st:{kind}:*"):
        for field, value in (await redis.hgetall(key)).items():
            found[field.decode()] = found.get(field.decode(), 0) + int(value)
    return found


async def test_sends_reports_and_approvals_are_counted_per_tenant_and_country(
    console: Console, redis: Redis
) -> None:
    verification_id = await undelivered_then_delivered(console)
    code = console.code_for(NUMBER)
    assert (await console.verify(verification_id, code)).json()["valid"] is True
    await console.report(NUMBER, verification_id, 2, "DELIVRD")  # a repeat counts once
    await console.report(NUMBER, verification_id, 2, "UNDELIV")  # a second final, once too
    for kind in ("m", "h"):
        fields = await stats_fields(redis, kind)
        assert fields.pop("acme|started|PL") == 1
        assert fields.pop("acme|sent|PL") == 2
        assert fields.pop("acme|undelivered|PL") == 1
        assert fields.pop("acme|delivered|PL") == 1
        assert fields.pop("acme|approved|PL") == 1
        assert fields.pop("acme|ps|UNDELIV 034") == 1
        assert fields.pop("acme|ps|DELIVRD") == 1
        [bucket] = [f for f in fields if f.startswith("acme|tt|")]
        fields.pop(bucket)
        assert fields == {}


async def test_the_counters_live_in_the_numbers_slot_and_expire_within_a_day(
    console: Console, redis: Redis
) -> None:
    await console.start(NUMBER)
    pepper = console.settings.pepper.reveal()
    shard = keys.shard_of(Identifiers(Secret(pepper)).number_tag("acme", NUMBER))
    found = [k async for k in redis.scan_iter(match="otp2:*:st:*")]
    assert len(found) == 2
    for key in found:
        assert key.decode().startswith(keys.shard_base(shard) + ":st:")
        assert 0 < await redis.pttl(key) <= keys.STATS_HOUR_TTL_MS


async def test_the_overview_shows_the_last_hour_and_day(console: Console) -> None:
    verification_id = await undelivered_then_delivered(console)
    code = console.code_for(NUMBER)
    await console.verify(verification_id, code)
    await console.sign_in("alice")
    page = await console.client.get("/console/overview")
    assert page.status_code == 200
    html = page.text
    assert html.count("<svg") == 2
    assert "50 %" in html  # delivered: 1 of 2 SMS
    assert "100 %" in html  # conversion: 1 approved of 1 started
    assert "UNDELIV 034" in html
    assert "<td>PL</td>" in html
    assert code not in html


async def test_one_tenants_overview_counts_nothing_of_another(console: Console) -> None:
    await console.start(NUMBER)
    await console.sign_in("bob")
    html = (await console.client.get("/console/overview")).text
    assert "No SMS in this window." in html
