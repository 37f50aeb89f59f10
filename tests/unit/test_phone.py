"""Phone number parsing and the destination policy."""

from __future__ import annotations

import pytest

from otpservice.domain.phone import check_destination_allowed, parse_destination, parse_e164
from otpservice.domain.policy import Policy
from otpservice.errors import DestinationNotAllowed, InvalidPhoneNumber


def test_numbers_are_normalised_to_e164_with_their_region_and_type() -> None:
    parsed = parse_destination(" +48 601-234-567 ")
    assert parsed.e164 == "+48601234567"
    assert parsed.region == "PL"
    assert parsed.number_type == "MOBILE"


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("48601234567", "must start with '\\+'"),
        ("+999123456", "unknown country calling code"),
        ("+4860", "too short"),
        ("+486012345678901", "too long"),
        ("+hello", "not a phone number"),
        ("+4870012345", "no such number range"),
        ("+" + "1" * 40, "too long"),
    ],
)
def test_bad_numbers_are_refused_with_a_reason(raw: str, reason: str) -> None:
    with pytest.raises(InvalidPhoneNumber, match=reason):
        parse_destination(raw)


def test_toll_free_numbers_are_refused_by_default_and_allowed_when_configured() -> None:
    toll_free = parse_destination("+48800123456")
    assert toll_free.number_type == "TOLL_FREE"
    with pytest.raises(DestinationNotAllowed, match="toll-free"):
        check_destination_allowed(toll_free, Policy())
    check_destination_allowed(toll_free, Policy(blocked_number_types=()))


def test_landlines_are_refused_by_default_but_numbers_that_may_be_mobile_are_not() -> None:
    landline = parse_destination("+48221234567")  # Warsaw
    assert landline.number_type == "FIXED_LINE"
    with pytest.raises(DestinationNotAllowed, match="fixed-line"):
        check_destination_allowed(landline, Policy())
    check_destination_allowed(landline, Policy(blocked_number_types=()))
    american = parse_destination("+12015550123")
    assert american.number_type == "FIXED_LINE_OR_MOBILE"
    check_destination_allowed(american, Policy())


def test_countries_outside_the_allowed_list_are_refused() -> None:
    german = parse_destination("+4915112345678")
    policy = Policy(allowed_countries=("PL",))
    with pytest.raises(DestinationNotAllowed, match="DE"):
        check_destination_allowed(german, policy)
    check_destination_allowed(parse_destination("+48601234567"), policy)


@pytest.mark.parametrize(
    "raw", ["+48601ABCDEF", "+48601234567x", "+48601234567 ext. 12", "+48 601 234 567;"]
)
def test_letters_and_extensions_are_refused_not_guessed(raw: str) -> None:
    # phonenumbers would read keypad letters as digits and send the code to another phone.
    with pytest.raises(InvalidPhoneNumber, match="not a phone number"):
        parse_destination(raw)


@pytest.mark.parametrize(
    "raw", [" +48601234567", "+48601234567 ", "+48601234567\n", "\t+48601234567"]
)
def test_the_api_takes_no_space_before_the_plus_or_after_the_last_digit(raw: str) -> None:
    with pytest.raises(InvalidPhoneNumber):
        parse_e164(raw)


def test_the_api_takes_a_spaced_out_number() -> None:
    assert parse_e164("+48 601-234-567").e164 == "+48601234567"
