"""Phone numbers: parse, validate and normalise to E.164, and apply the destination policy."""

from __future__ import annotations

import re

import msgspec
import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberType, ValidationResult

from otpservice.domain.policy import Policy
from otpservice.errors import DestinationNotAllowed, InvalidPhoneNumber

_MAX_INPUT = 32
_ALLOWED = re.compile(r"\+[0-9][0-9 ().-]*")
API_NUMBER_PATTERN = r"^\+[0-9]([0-9 ().-]{0,29}[0-9])?$"
"""What the API takes and documents: E.164, which may be spaced out for readability
("+48 601-234-567"); nothing before the '+' or after the last digit."""
_API_NUMBER = re.compile(API_NUMBER_PATTERN)

_PARSE_REASONS = {
    NumberParseException.INVALID_COUNTRY_CODE: "unknown country calling code",
    NumberParseException.NOT_A_NUMBER: "not a phone number",
    NumberParseException.TOO_SHORT_AFTER_IDD: "too short",
    NumberParseException.TOO_SHORT_NSN: "too short",
    NumberParseException.TOO_LONG: "too long",
}

_POSSIBLE_REASONS = {
    ValidationResult.INVALID_COUNTRY_CODE: "unknown country calling code",
    ValidationResult.TOO_SHORT: "too short",
    ValidationResult.TOO_LONG: "too long",
    ValidationResult.INVALID_LENGTH: "wrong length for its country",
}

_TYPE_NAMES = {
    value: name
    for name, value in vars(PhoneNumberType).items()
    if name.isupper() and isinstance(value, int)
}


class Destination(msgspec.Struct, frozen=True):
    e164: str
    region: str
    """ISO 3166 alpha-2, e.g. 'PL'; '001' for non-geographic numbers."""
    number_type: str
    """phonenumbers PhoneNumberType name, e.g. 'MOBILE'."""


def parse_e164(raw: str) -> Destination:
    """Parse a number as the API takes it (API_NUMBER_PATTERN), or raise InvalidPhoneNumber."""
    spaced = raw != raw.strip()
    if spaced or (raw[:1] == "+" and len(raw) <= _MAX_INPUT and not _API_NUMBER.fullmatch(raw)):
        raise InvalidPhoneNumber(
            "Not a valid phone number: not a phone number (only digits, spaces, '-', '.' and"
            " '()' may follow the '+', and nothing may come before it)."
        )
    return parse_destination(raw)


def parse_destination(raw: str) -> Destination:
    """Parse an E.164 number (leading '+' required) or raise InvalidPhoneNumber with a reason."""
    text = raw.strip()
    if not text.startswith("+"):
        raise InvalidPhoneNumber("Not in E.164 form: it must start with '+' and a country code.")
    if len(text) > _MAX_INPUT:
        raise InvalidPhoneNumber("Not a valid phone number: too long.")
    if not _ALLOWED.fullmatch(text):
        # phonenumbers reads letters as keypad digits and drops extensions: a typo would send
        # a code to somebody else's phone.
        raise InvalidPhoneNumber(
            "Not a valid phone number: not a phone number (only digits, spaces, '-', '.' and"
            " '()' may follow the '+')."
        )
    try:
        number = phonenumbers.parse(text, None)
    except NumberParseException as exc:
        reason = _PARSE_REASONS.get(exc.error_type, "not a phone number")
        raise InvalidPhoneNumber(f"Not a valid phone number: {reason}.") from exc
    possible = phonenumbers.is_possible_number_with_reason(number)
    if possible != ValidationResult.IS_POSSIBLE:
        reason = _POSSIBLE_REASONS.get(possible, "not possible")
        raise InvalidPhoneNumber(f"Not a valid phone number: {reason}.")
    if not phonenumbers.is_valid_number(number):
        raise InvalidPhoneNumber("Not a valid phone number: no such number range in its country.")
    region = phonenumbers.region_code_for_number(number) or "001"
    number_type = _TYPE_NAMES.get(phonenumbers.number_type(number), "UNKNOWN")
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    return Destination(e164=e164, region=region, number_type=number_type)


def check_destination_allowed(destination: Destination, policy: Policy) -> None:
    """Raise DestinationNotAllowed when the tenant's policy refuses this country or number type."""
    if policy.allowed_countries and destination.region not in policy.allowed_countries:
        raise DestinationNotAllowed(
            f"Codes cannot be sent to numbers of region {destination.region}."
        )
    if destination.number_type in policy.blocked_number_types:
        kind = destination.number_type.lower().replace("_", "-")
        raise DestinationNotAllowed(f"Codes cannot be sent to {kind} numbers.")


def known_number_types() -> frozenset[str]:
    return frozenset(_TYPE_NAMES.values())
