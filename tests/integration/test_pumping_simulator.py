"""The pumping simulator (bench/pumping.py) on a reduced scenario, through the same code: a few
simulated days of a tenant's logins and the issue's attack shapes, decided by fraud_check.lua on
the session's Redis. It holds the fraud guard to the issue's goals, and the slow drip (which
misses one by design) to the figure bench/README.md gives, so a regression shows here."""

from __future__ import annotations

import pytest

from bench.pumping_sim.results import (
    GOAL_LEGIT_REFUSED_SHARE,
    GOAL_REFUSED_SHARE,
    GOAL_SENT_BEFORE_BLOCK,
    RunResult,
    Scenario,
)
from bench.pumping_sim.runner import simulate
from otpservice.domain.fraud import FraudPolicy
from tests.support.redis_servers import Topology

# Three days of history, one day of attacks, half the default volumes: about 20 s.
SCENARIO = Scenario(
    warmup_days=3, measured_days=1, scale=0.5, shapes=("a", "b", "c", "d", "e", "e2")
)
MEETING_THE_GOALS = ("a", "c", "d", "e", "e2")


@pytest.fixture(scope="module")
async def run(redis_server: Topology) -> RunResult:
    return await simulate(redis_server.url, SCENARIO)


@pytest.mark.parametrize("key", MEETING_THE_GOALS)
async def test_an_attack_shape_is_cut_off_without_refusing_real_users(
    run: RunResult, key: str
) -> None:
    shape = run.shape(key)
    assert shape.attack is not None
    attack = shape.attack
    assert attack.sends.share >= GOAL_REFUSED_SHARE, attack
    assert attack.sent_before_first_refusal <= GOAL_SENT_BEFORE_BLOCK, attack
    assert shape.legit.total.share <= GOAL_LEGIT_REFUSED_SHARE, shape.legit


def test_the_slow_drip_gets_the_country_floor_a_day_and_not_one_sms_more(run: RunResult) -> None:
    # By design (bench/README.md): under the hourly floor, a country the tenant does not serve
    # gets its day floor of unverified sends, and then nothing until the day ends.
    floor = FraudPolicy().country.floor_day
    attack = run.shape("b").attack
    assert attack is not None
    assert attack.sent_by_day == [floor] * SCENARIO.measured_days
    assert attack.sent_before_first_refusal == floor
    assert attack.first_refusal_rule == "country_budget"


def test_an_attack_in_a_served_country_does_not_lock_that_countrys_users_out(
    run: RunResult,
) -> None:
    # Refusing GB as a whole once the attack had used its budget refused about 80 % of its
    # real users' sends; only the attacked prefixes are refused now.
    gb = run.shape("e").legit.by_country["GB"]
    assert gb.attempts > 50
    assert gb.share <= 0.05, gb


def test_real_users_alone_are_almost_never_refused_even_on_a_new_tenants_first_day(
    run: RunResult,
) -> None:
    baseline = run.shapes[0]
    assert baseline.attack is None
    assert baseline.legit.total.share <= GOAL_LEGIT_REFUSED_SHARE, baseline.legit
    first_day = baseline.legit_warmup.by_day[0]
    assert first_day.attempts > 1000
    assert first_day.share <= GOAL_LEGIT_REFUSED_SHARE, first_day


def test_the_counters_cost_a_few_hundred_bytes_per_active_prefix_or_ip_and_day(
    run: RunResult,
) -> None:
    memory = run.memory
    assert memory is not None
    assert memory.scopes["prefixes"] > 500
    assert memory.scopes["ips"] > 500
    assert 50 <= memory.bytes_per_scope_day <= 400, memory
