"""Code generation, code format checks and policy arithmetic: pure functions, no I/O."""

from __future__ import annotations

import collections

import pytest

from otpservice.domain.codes import check_code_format, generate_code
from otpservice.domain.policy import Limits, Policy, resend_cooldown, ttl_minutes
from otpservice.errors import InvalidCodeFormat


@pytest.mark.parametrize("length", [4, 6, 8, 10])
def test_generated_codes_have_the_requested_number_of_digits(length: int) -> None:
    for _ in range(200):
        code = generate_code(length)
        assert len(code) == length
        assert code.isascii()
        assert code.isdigit()


def test_generated_codes_keep_leading_zeros_and_cover_every_digit_evenly() -> None:
    counts: collections.Counter[str] = collections.Counter()
    for _ in range(5000):
        counts.update(generate_code(4))
    assert set(counts) == set("0123456789")
    # 20 000 digits: each digit ~2000; a biased generator (e.g. modulo bias) drifts far more.
    assert all(1700 < n < 2300 for n in counts.values())


@pytest.mark.parametrize("length", [3, 11, 0])
def test_code_lengths_outside_4_to_10_are_refused(length: int) -> None:
    with pytest.raises(ValueError, match="4-10"):
        generate_code(length)


@pytest.mark.parametrize("code", ["12345", "1234567", "12345a", " 123456", "١٢٣٤٥٦", "12.456", ""])
def test_codes_of_the_wrong_shape_are_refused_before_hashing(code: str) -> None:
    with pytest.raises(InvalidCodeFormat):
        check_code_format(code, 6)


def test_a_code_of_the_right_shape_passes() -> None:
    check_code_format("012345", 6)


def test_resend_cooldown_doubles_from_30_seconds_and_is_capped() -> None:
    policy = Policy()
    assert [resend_cooldown(policy, n) for n in range(6)] == [0, 30, 60, 120, 240, 480]
    assert resend_cooldown(policy, 40) == policy.resend_cooldown_max_seconds


def test_the_sms_states_the_lifetime_in_whole_minutes() -> None:
    assert ttl_minutes(Policy()) == 10
    assert ttl_minutes(Policy(code_ttl_seconds=5)) == 1
    assert ttl_minutes(Policy(code_ttl_seconds=150)) == 2


def test_defaults_match_the_contract() -> None:
    policy = Policy()
    assert (policy.code_length, policy.code_ttl_seconds) == (6, 600)
    assert (policy.max_attempts, policy.max_sends) == (5, 5)
    assert policy.resend_cooldown_seconds == 30
    assert policy.limits.failed_checks_per_number == 20
    assert policy.limits.failed_checks_window_seconds == 24 * 3600


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"code_length": 3}, "code_length"),
        ({"code_length": 11}, "code_length"),
        ({"max_attempts": 0}, "max_attempts"),
        ({"max_sends": 0}, "max_sends"),
        ({"code_ttl_seconds": 0}, "code_ttl_seconds"),
        ({"limits": Limits(failed_checks_per_number=101)}, "NIST"),
        ({"limits": Limits(sends_per_number_per_hour=0)}, "sends_per_number_per_hour"),
    ],
)
def test_a_policy_outside_safe_bounds_is_refused(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Policy(**kwargs)  # type: ignore[arg-type]
