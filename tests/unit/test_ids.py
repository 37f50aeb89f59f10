"""Verification references and message references: only our own exact shape is read as ours."""

from __future__ import annotations

import pytest

from otpservice.errors import ConfigError
from otpservice.ids import Identifiers, VerificationRef, message_ref, parse_message_ref, parse_ref
from otpservice.settings import Secret, load_settings

IDS = Identifiers(Secret(b"p" * 32))
REF = VerificationRef(IDS.number_tag("acme", "+48601234567"), IDS.new_rand())


def test_a_reference_reads_back_and_so_does_a_message_reference() -> None:
    assert parse_ref(REF.text) == REF
    assert parse_message_ref(message_ref(REF, 3)) == (REF, 3)


@pytest.mark.parametrize(
    "text",
    [
        REF.text + "\n",  # a trailing newline: `$` would let it through
        REF.text + "x",
        REF.text.upper(),
        REF.text[:-1],
        "\u0661" + REF.text[1:],
    ],
)
def test_anything_but_our_exact_shape_is_not_a_reference(text: str) -> None:
    assert parse_ref(text) is None


@pytest.mark.parametrize(
    "send", ["\u0661", "\u00b9", "\uff11", "1\n", "01", "0", "-1", "", "12345", " 1"]
)
def test_a_send_number_is_ascii_digits_only(send: str) -> None:
    assert parse_message_ref(f"{REF.text}-{send}") is None


def test_tags_are_per_tenant_and_never_show_the_number() -> None:
    acme = IDS.number_tag("acme", "+48601234567")
    assert acme != IDS.number_tag("other", "+48601234567")
    assert acme == Identifiers(Secret(b"p" * 32)).number_tag("acme", "+48601234567")
    assert acme != Identifiers(Secret(b"q" * 32)).number_tag("acme", "+48601234567")
    assert "601234567" not in acme


def test_a_non_ascii_digit_in_a_setting_is_a_configuration_error() -> None:
    with pytest.raises(ConfigError):
        load_settings({"OTP_SANDBOX_OUTCOMES": "delivered=\u00b9"})


def test_a_public_id_opens_to_its_reference_for_its_tenant_only() -> None:
    public = IDS.public_id(REF, "acme")
    assert IDS.ref_for_id(public, "acme") == REF
    assert IDS.ref_for_id(public, "other") != REF
    assert public[:26] == REF.rand  # the random part leads; the tag is sealed behind it
    assert REF.tag not in public


def test_ids_of_one_number_share_nothing_but_chance() -> None:
    tag = IDS.number_tag("acme", "+48601234567")
    ids = [IDS.public_id(VerificationRef(tag, IDS.new_rand()), "acme") for _ in range(50)]
    tails = {i[26:] for i in ids}
    assert len(tails) == 50
    assert IDS.ref_for_id("!" * 42, "acme") is None
