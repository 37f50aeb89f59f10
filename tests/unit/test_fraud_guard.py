"""The fraud guard in the use cases (usecases/fraud.py): what it asks about a send, what its
verdict does to the request, what it settles afterwards, and how a refusal reads. Its budgets
themselves are fraud_check.lua's, tested on a real Redis (tests/integration/test_fraud.py) and
measured by the pumping simulator."""

from __future__ import annotations

from collections.abc import Iterator

import msgspec
import pytest

from otpservice.domain.fraud import Budget, FraudPolicy, number_prefix
from otpservice.errors import FraudSuspected, ResendTooSoon
from otpservice.usecases.fraud import explain
from otpservice.usecases.ports import FraudQuery, FraudVerdict
from tests.unit.world import NUMBER, World, tenant

HOUR_MS = 3_600_000


@pytest.fixture
def world() -> Iterator[World]:
    w = World()
    yield w
    w.close()


def refusal(world: World, rule: str = "prefix_budget", **kw: int | str) -> FraudVerdict:
    fields: dict[str, int | str] = {
        "figure": 11, "limit": 10, "window": "day", "until_ms": world.clock.now + 300_000,
    }  # fmt: skip
    fields.update(kw)
    return FraudVerdict(verdict="refuse", rule=rule, **fields)  # type: ignore[arg-type]


async def test_the_guard_is_asked_with_the_country_prefix_and_the_end_users_ip(
    world: World,
) -> None:
    await world.start(end_user_ip="203.0.113.7")
    [query] = world.store.fraud_queries
    assert query is not None
    assert (query.country, query.prefix, query.mode) == ("PL", "+486012", "enforce")
    # The IP goes as a keyed tag, never in clear; the connection's address is not the end user's.
    assert query.ip == world.ids.ip_tag("acme", "203.0.113.7")
    assert "203.0.113.7" not in msgspec.json.encode(query).decode()
    await world.start("+48601000009")
    assert world.store.fraud_queries[-1] is not None
    assert world.store.fraud_queries[-1].ip == ""


async def test_a_refusal_is_fraud_suspected_with_its_figures_and_sends_nothing(
    world: World,
) -> None:
    world.store.fraud_verdict = refusal(world)
    with pytest.raises(FraudSuspected) as refused:
        await world.start()
    assert refused.value.status == 429
    assert refused.value.retry_after == 300
    assert refused.value.rule == "prefix_budget"
    assert refused.value.detail.startswith("+48 6012 (PL): 11 unverified sends today, budget 10;")
    assert world.queue.jobs == []
    assert world.store.lane_entries == []
    # A refused send was never counted: nothing to take back.
    assert world.fraud.settled == []


async def test_a_send_counted_then_refused_by_another_limit_is_taken_back(world: World) -> None:
    view = await world.start()
    with pytest.raises(ResendTooSoon):
        await world.sending.resend(world.acme, view.id)
    assert [(s[1], s[3]) for s in world.fraud.settled] == [(False, "+486012")]
    assert len(world.queue.jobs) == 1


async def test_monitor_mode_sends_and_records_the_decision_on_the_verification(
    world: World,
) -> None:
    world.acme = tenant(fraud=FraudPolicy(mode="monitor"))
    world.store.fraud_verdict = msgspec.structs.replace(refusal(world), verdict="flag")
    view = await world.start()
    assert len(world.queue.jobs) == 1
    assert [e.status for e in view.events] == ["queued", "flagged"]
    flag = view.events[1]
    assert flag.provider_status == "prefix_budget"
    assert "11 unverified sends today, budget 10; would be blocked until" in flag.detail
    assert "(monitor mode: sent)" in flag.detail
    assert world.fraud.settled == []  # it was sent: the guard keeps it counted


async def test_off_mode_asks_nothing(world: World) -> None:
    world.acme = tenant(fraud=FraudPolicy(mode="off"))
    world.store.fraud_verdict = refusal(world)
    await world.start()
    assert world.store.fraud_queries == [None]
    assert len(world.queue.jobs) == 1


async def test_an_approval_settles_every_send_of_the_verification(world: World) -> None:
    view = await world.start(end_user_ip="203.0.113.7")
    world.clock.advance(31)
    await world.sending.resend(world.acme, view.id)
    result = await world.verify(world.queue.code_to(NUMBER), id=view.id)
    assert result.valid
    ip = world.ids.ip_tag("acme", "203.0.113.7")
    assert world.fraud.settled == [("acme", True, "PL", "+486012", ip, 2)]


async def test_a_resend_is_asked_about_with_the_ip_of_its_start(world: World) -> None:
    view = await world.start(end_user_ip="203.0.113.7")
    world.clock.advance(31)
    await world.sending.resend(world.acme, view.id)
    first, again = world.store.fraud_queries
    assert first is not None
    assert again is not None
    assert (again.country, again.prefix, again.ip) == (first.country, first.prefix, first.ip)


async def test_a_safe_listed_number_is_asked_about_as_safe(world: World) -> None:
    world.acme = tenant(fraud=FraudPolicy(safe_numbers=(NUMBER,), safe_prefixes=("+4860",)))
    await world.start()
    await world.start("+48601000009")
    assert [q.safe for q in world.store.fraud_queries if q is not None] == [True, True]
    world.acme = tenant(fraud=FraudPolicy(safe_prefixes=("+4861",)))
    await world.start("+48601000008")
    assert world.store.fraud_queries[-1] is not None
    assert world.store.fraud_queries[-1].safe is False


def test_a_prefix_is_the_country_code_and_the_first_national_digits() -> None:
    assert number_prefix("+447700900123", 4) == "+447700"
    assert number_prefix("+48601234567", 2) == "+4860"
    assert number_prefix("+12015550123", 3) == "+1201"


def _query(**kw: object) -> FraudQuery:
    base = FraudQuery(
        tenant="acme", now_ms=1_764_000_000_000, mode="enforce", country="GB",
        prefix="+447700", ip="", e164="+447700900123", safe=False,
        country_budget=Budget(floor_day=20, floor_hour=3), prefix_budget=Budget(floor_day=10,
        floor_hour=3), ip_budget=Budget(floor_day=10, floor_hour=3), ip_countries=3,
        cooloff_ms=300_000, cooloff_max_ms=43_200_000, country_cap=0, cap_action="block",
    )  # fmt: skip
    return msgspec.structs.replace(base, **kw)


def test_a_refusal_names_its_rule_its_figures_and_when_it_ends() -> None:
    query = _query()
    until = query.now_ms + 35 * 60_000  # 2025-11-24 16:00Z + 35 min
    cases = {
        "country_budget": "GB: 21 unverified sends today, budget 20; refused until 16:35Z",
        "prefix_budget": "+44 7700 (GB): 21 unverified sends today, budget 20; blocked until"
        " 16:35Z",
        "ip_budget": "the end user's IP: 21 unverified sends today, budget 20; blocked until"
        " 16:35Z",
        "ip_countries": "the end user's IP asked for codes to 21 countries today, limit 20;"
        " blocked until 16:35Z",
        "country_cap": "GB: 21 sends today, cap 20; refused until 16:35Z",
        "country_prefix": "GB: 21 unverified sends today, budget 20, and +44 7700 (GB) converts"
        " less than half of today's codes; refused until 16:35Z",
    }
    for rule, text in cases.items():
        verdict = FraudVerdict(
            verdict="refuse", rule=rule, figure=21, limit=20, window="day", until_ms=until
        )
        assert explain(query, verdict) == text
    renewed = FraudVerdict(
        verdict="refuse", rule="prefix_budget", figure=4, limit=3, window="hour", until_ms=until,
        level=2,
    )  # fmt: skip
    assert explain(query, renewed) == (
        "+44 7700 (GB): 4 unverified sends this hour, budget 3; blocked until 16:35Z"
        " (block 3 in a day: the cool-off doubled)"
    )


def test_the_policy_refuses_nonsense_with_every_problem_named() -> None:
    with pytest.raises(ValueError, match="prefix_digits") as bad:
        FraudPolicy(
            prefix_digits=0,
            country_hourly_caps={"gb": 5},
            safe_numbers=("48601",),
            prefix=Budget(floor_day=0, floor_hour=1),
        )
    text = str(bad.value)
    for part in ("prefix_digits", "country_hourly_caps", "safe_numbers", "fraud.prefix"):
        assert part in text
