"""The fraud guard end to end, through the API on a real Redis (fraud_check.lua decides): a
pumping burst is cut off, converting traffic is not, monitor mode only flags, blocks are lifted
by approvals and through the tenant API, and every refusal says why."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from typing import Any

from tests.integration.conftest import Harness, metric_value

# A detail names the scope, its figure and limit, and when the refusal ends.
DETAIL = re.compile(
    r"^(?P<scope>.+): (?P<figure>\d+) (unverified sends|sends|countries) (this hour|today),"
    r" (budget|cap|limit) (?P<limit>\d+)(, and .+ converts less than half of today's codes)?;"
    r" (blocked|refused) until \d\d:\d\dZ; retry in (?P<retry>\d+) s$"
)
# A country where the guard may block a prefix: the country's own budget set high.
ROOMY_COUNTRY = {"country": {"floor_day": 1000, "floor_hour": 1000}}


def gb(n: int) -> str:
    """Fresh GB mobiles, one prefix (+44 7400)."""
    return f"+44740012{n:04d}"


async def burst(h: Harness, numbers: list[str], **body: Any) -> tuple[int, list[Any]]:
    """Start each number until the first refusal: (SMS sent, the refusals that followed)."""
    sent, refusals = 0, []
    for to in numbers:
        answer = await h.start(to, **body)
        if answer.status_code == 201:
            assert not refusals, "a send got through after a refusal"
            sent += 1
        else:
            refusals.append(answer)
    return sent, refusals


async def test_a_burst_to_a_new_country_is_cut_off_within_25_sms_with_reasons(
    make_harness: Callable[..., Any],
) -> None:
    async with make_harness({"fraud": {}}) as h:  # the guard's defaults: enforce
        before = await metric_value(
            h.client, "otp_fraud_decisions_total", rule="country_budget", action="blocked"
        )
        sent, refusals = await burst(h, [gb(i) for i in range(40)])
        assert 1 <= sent <= 25
        assert len(refusals) == 40 - sent
        await h.settle()
        assert len(h.gateway.outbox) == sent
        first = refusals[0]
        assert first.status_code == 429
        assert first.headers["content-type"].startswith("application/problem+json")
        problem = first.json()
        assert problem["code"] == "fraud_suspected"
        found = DETAIL.match(problem["detail"])
        assert found is not None, problem["detail"]
        assert found["scope"] == "GB"
        assert int(found["figure"]) == int(found["limit"]) + 1
        assert 1 <= int(first.headers["retry-after"]) <= 3600
        assert found["retry"] == first.headers["retry-after"]
        # Never the number itself in a refusal.
        assert "7400" not in problem["detail"]
        after = await metric_value(
            h.client, "otp_fraud_decisions_total", rule="country_budget", action="blocked"
        )
        assert after - before == len(refusals)


async def test_converting_traffic_is_never_refused_beside_an_attack(
    make_harness: Callable[..., Any],
) -> None:
    async with make_harness({"fraud": {}}) as h:
        # Users take seconds to type a code, and approvals are settled every half second
        # (APPROVALS_FLUSH_SECONDS): this test compresses both, 60 ms to type and 50 ms batches.
        h.app.state.services.fraud_store._flush_seconds = 0.05
        sent, _ = await burst(h, [gb(i) for i in range(30)])  # the attack, cut off
        assert sent <= 25
        # 40 users in PL, one prefix, all entering their code: no unverified sends pile up.
        for i in range(40):
            to = f"+48601{i:06d}"
            started = await h.start(to)
            assert started.status_code == 201, started.text
            checked = await h.verify(await h.code_for(to), id=started.json()["id"])
            assert checked.json()["valid"] is True
            await asyncio.sleep(0.06)


async def test_monitor_mode_sends_the_burst_and_counts_and_records_it_as_flagged(
    make_harness: Callable[..., Any],
) -> None:
    async with make_harness({"fraud": {"mode": "monitor"}}) as h:
        before = await metric_value(
            h.client, "otp_fraud_decisions_total", rule="country_budget", action="flagged"
        )
        sent, refusals = await burst(h, [gb(i) for i in range(40)])
        assert (sent, refusals) == (40, [])
        await h.settle()
        assert len(h.gateway.outbox) == 40
        after = await metric_value(
            h.client, "otp_fraud_decisions_total", rule="country_budget", action="flagged"
        )
        assert after - before >= 15
        last = (await h.start(gb(40))).json()
        flags = [e for e in last["delivery"]["events"] if e["status"] == "flagged"]
        assert len(flags) == 1
        assert flags[0]["provider_status"] == "country_budget"
        assert "(monitor mode: sent)" in flags[0]["detail"]
        read = await h.client.get(f"/otp/{last['id']}", headers=h.headers)
        assert [e["status"] for e in read.json()["delivery"]["events"]][:2] == [
            "queued",
            "flagged",
        ]


async def test_a_prefix_past_its_budget_is_blocked_listed_and_lifted(
    make_harness: Callable[..., Any],
) -> None:
    async with make_harness({"fraud": ROOMY_COUNTRY}) as h:
        sent, refusals = await burst(h, [gb(i) for i in range(10)])
        assert sent == 3  # the prefix's hour floor
        problem = refusals[0].json()
        assert problem["detail"].startswith(
            "+44 7400 (GB): 4 unverified sends this hour, budget 3;"
        )
        assert 290 <= int(refusals[0].headers["retry-after"]) <= 300  # the first cool-off
        # Another prefix of the same country is not blocked.
        assert (await h.start("+447401123456")).status_code == 201

        listed = (await h.client.get("/fraud/blocks", headers=h.headers)).json()["blocks"]
        assert [(b["id"], b["kind"], b["rule"], b["country"]) for b in listed] == [
            ("prefix:+447400", "prefix", "prefix_budget", "GB")
        ]
        assert listed[0]["detail"].startswith("+44 7400 (GB): 4 unverified sends this hour")
        assert listed[0]["until"] > listed[0]["blocked_at"]
        # Another tenant sees none of it.
        other = {"Authorization": "Bearer test-key-tenant-b"}
        assert (await h.client.get("/fraud/blocks", headers=other)).json() == {"blocks": []}

        lifted = await h.client.delete("/fraud/blocks/prefix:+447400", headers=h.headers)
        assert lifted.status_code == 200
        assert lifted.json() == {"blocks": []}
        # Its unverified sends are forgiven: the prefix has its budget again.
        sent, _ = await burst(h, [gb(i) for i in range(50, 60)])
        assert sent == 3
        for unknown in ("prefix:+447401", "ip:nothing", "nonsense"):
            found = await h.client.delete(f"/fraud/blocks/{unknown}", headers=h.headers)
            assert (found.status_code, found.json()["code"]) == (404, "not_found")


async def test_an_approval_in_a_blocked_prefix_lifts_the_block(
    make_harness: Callable[..., Any],
) -> None:
    async with make_harness({"fraud": ROOMY_COUNTRY}) as h:
        ids = [(await h.start(gb(i))).json()["id"] for i in range(3)]
        refused = await h.start(gb(3))
        assert refused.json()["code"] == "fraud_suspected"
        # A real user of that prefix enters the code sent before the block.
        assert (await h.verify(await h.code_for(gb(0)), id=ids[0])).json()["valid"] is True
        # Approvals are settled in batches, a moment after the answer.
        for _ in range(100):
            blocks = (await h.client.get("/fraud/blocks", headers=h.headers)).json()["blocks"]
            if not blocks:
                break
            await h.settle(0.05)
        assert blocks == []
        assert (await h.start(gb(4))).status_code == 201


async def test_a_block_doubles_its_cool_off_when_it_is_set_again(
    make_harness: Callable[..., Any],
) -> None:
    async with make_harness({"fraud": ROOMY_COUNTRY}) as h:
        await burst(h, [gb(i) for i in range(4)])
        await h.client.delete("/fraud/blocks/prefix:+447400", headers=h.headers)
        sent, [refused, *_] = await burst(h, [gb(i) for i in range(10, 20)])
        assert sent == 3
        assert 590 <= int(refused.headers["retry-after"]) <= 600
        assert "(block 2 in a day: the cool-off doubled)" in refused.json()["detail"]


async def test_the_safe_list_lets_the_tenants_own_numbers_through(
    make_harness: Callable[..., Any],
) -> None:
    async with make_harness({"fraud": ROOMY_COUNTRY}) as h:
        await burst(h, [gb(i) for i in range(5)])
        assert (await h.start(gb(20))).status_code == 429
        added = await h.client.put("/fraud/safe-list/+4474001200", headers=h.headers)
        assert added.json() == {"entries": ["+4474001200"]}
        for i in range(20, 26):
            assert (await h.start(gb(i))).status_code == 201
        assert (await h.start(gb(130))).status_code == 429  # outside the safe prefix
        bad = await h.client.put("/fraud/safe-list/4474", headers=h.headers)
        assert bad.status_code == 400
        removed = await h.client.delete("/fraud/safe-list/+4474001200", headers=h.headers)
        assert removed.json() == {"entries": []}
        assert (await h.start(gb(27))).status_code == 429


async def test_one_ip_asking_for_codes_to_many_countries_is_blocked(
    make_harness: Callable[..., Any],
) -> None:
    async with make_harness({"fraud": {}}) as h:
        signals = {"signals": {"ip": "203.0.113.7"}}
        for to in ("+447400123456", "+4915112345678", "+33612345678"):
            assert (await h.start(to, **signals)).status_code == 201
        refused = await h.start("+34612345678", **signals)
        assert refused.status_code == 429
        detail = refused.json()["detail"]
        assert detail.startswith("the end user's IP asked for codes to 4 countries today, limit 3")
        assert "203.0.113" not in detail
        # That IP is blocked in its usual country too; another end user is not.
        assert (await h.start("+420601123456", **signals)).status_code == 429
        other_user = {"signals": {"ip": "198.51.100.9"}}
        assert (await h.start("+34612345678", **other_user)).status_code == 201
        [block] = (await h.client.get("/fraud/blocks", headers=h.headers)).json()["blocks"]
        assert (block["kind"], block["prefix"], block["rule"]) == ("ip", None, "ip_countries")
        assert "203.0.113" not in block["id"]


async def test_a_resend_in_a_blocked_prefix_is_refused_too(
    make_harness: Callable[..., Any],
) -> None:
    policy = {"fraud": ROOMY_COUNTRY, "resend_cooldown_seconds": 0}
    async with make_harness(policy) as h:
        first = (await h.start(gb(0))).json()
        await burst(h, [gb(i) for i in range(1, 5)])
        resent = await h.client.post(f"/otp/{first['id']}/resend", headers=h.headers)
        assert resent.status_code == 429
        assert resent.json()["code"] == "fraud_suspected"


async def test_landlines_are_refused_by_default(harness: Harness) -> None:
    refused = await harness.start("+48221234567")
    assert refused.status_code == 403
    assert refused.json()["code"] == "destination_not_allowed"
    assert "fixed-line" in refused.json()["detail"]
