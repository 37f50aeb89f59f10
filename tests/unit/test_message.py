"""The SMS text: templates, autofill lines, segment counting and locale choice."""

from __future__ import annotations

import pytest

from otpservice.domain.message import (
    AVAILABLE_LOCALES,
    DEFAULT_TEMPLATES,
    check_template,
    choose_locale,
    render_sms,
    sms_encoding,
    validate_template,
)
from otpservice.errors import ConfigError

APP_HASH = "FA+9qCX9VSu"
LONGEST_SENDER = "A" * 11  # alphanumeric sender ids stop at 11 characters
DOMAIN_OF_30 = "verification.login.example.com"


def test_the_required_locales_are_built_in() -> None:
    assert {"en", "pl", "de", "fr", "es", "pt", "it", "nl"} <= AVAILABLE_LOCALES


@pytest.mark.parametrize("locale", sorted(DEFAULT_TEMPLATES))
def test_each_locale_shows_the_code_once_with_app_and_lifetime(locale: str) -> None:
    text = render_sms(DEFAULT_TEMPLATES[locale], code="482913", app="Acme", minutes=10)

    assert text.count("482913") == 1
    assert "Acme" in text
    assert "10" in text
    assert "{" not in text
    assert "}" not in text


@pytest.mark.parametrize("locale", sorted(DEFAULT_TEMPLATES))
def test_each_built_in_template_fits_one_gsm7_sms_in_the_worst_case(locale: str) -> None:
    assert len(DOMAIN_OF_30) == 30
    check_template(
        DEFAULT_TEMPLATES[locale],
        locale=locale,
        app=LONGEST_SENDER,
        max_code_length=10,
        minutes=60,
        webotp_domain=DOMAIN_OF_30,
        allow_app_hash=True,
    )
    worst = render_sms(
        DEFAULT_TEMPLATES[locale],
        code="9" * 10,
        app=LONGEST_SENDER,
        minutes=60,
        webotp_domain=DOMAIN_OF_30,
    )
    assert sms_encoding(worst).encoding == "GSM-7"


# --- segment counting ---------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["Kod 123456", "Gültig für 10 Min", "à é ñ ß Ä Ö Ü @£$¥", "a\nb"])
def test_text_within_the_gsm_alphabet_is_sent_as_gsm7(text: str) -> None:
    measured = sms_encoding(text)

    assert measured.encoding == "GSM-7"
    assert measured.units == len(text)


@pytest.mark.parametrize("char", ["^", "{", "}", "\\", "[", "~", "]", "|", "€", "\f"])
def test_extension_characters_take_two_septets(char: str) -> None:
    measured = sms_encoding("ab" + char)

    assert measured.encoding == "GSM-7"
    assert measured.units == 4


@pytest.mark.parametrize("text", ["Twój kod", "código", "ç", "Код", "验证码"])
def test_a_character_outside_gsm_switches_the_whole_text_to_ucs2(text: str) -> None:
    measured = sms_encoding(text)

    assert measured.encoding == "UCS-2"
    assert measured.units == len(text)


def test_an_emoji_counts_two_ucs2_units() -> None:
    measured = sms_encoding("ok 😀")

    assert measured.encoding == "UCS-2"
    assert measured.units == 5


@pytest.mark.parametrize(
    ("text", "segments"),
    [
        ("a" * 160, 1),
        ("a" * 161, 2),
        ("a" * 306, 2),
        ("a" * 307, 3),
        ("€" * 80, 1),
        ("€" * 81, 2),
        ("ą" * 70, 1),
        ("ą" * 71, 2),
        ("ą" * 134, 2),
        ("ą" * 135, 3),
        ("😀" * 35, 1),
        ("😀" * 36, 2),
    ],
)
def test_long_texts_are_split_into_153_septet_or_67_unit_parts(text: str, segments: int) -> None:
    assert sms_encoding(text).segments == segments


def test_an_escape_pair_is_never_split_across_parts() -> None:
    # 306 septets would be two full parts, but the euro sign cannot straddle the boundary.
    text = "a" * 152 + "€" + "a" * 152

    measured = sms_encoding(text)

    assert measured.units == 306
    assert measured.segments == 3


def test_a_surrogate_pair_is_never_split_across_parts() -> None:
    text = "ą" * 66 + "😀" + "ą" * 66

    measured = sms_encoding(text)

    assert measured.units == 134
    assert measured.segments == 3


# --- autofill lines -----------------------------------------------------------------------------


def test_the_webotp_domain_adds_an_origin_bound_last_line() -> None:
    text = render_sms(
        DEFAULT_TEMPLATES["en"],
        code="123456",
        app="Acme",
        minutes=10,
        webotp_domain="login.example.com",
    )

    assert text == (
        "Your Acme code is 123456. Valid for 10 min. Don't share it.\n\n@login.example.com #123456"
    )


def test_an_app_hash_takes_the_last_line_instead_of_the_webotp_line() -> None:
    text = render_sms(
        DEFAULT_TEMPLATES["en"],
        code="123456",
        app="Acme",
        minutes=10,
        webotp_domain="login.example.com",
        app_hash=APP_HASH,
    )

    assert text.endswith("\n\n" + APP_HASH)
    assert text.splitlines()[-1] == APP_HASH
    assert "@login.example.com" not in text


def test_without_domain_or_hash_the_text_is_the_template_alone() -> None:
    text = render_sms("{code} is your {app} code", code="123456", app="Acme", minutes=10)

    assert text == "123456 is your Acme code"


def test_a_trailing_newline_in_the_template_does_not_push_the_webotp_line_up() -> None:
    text = render_sms("Code {code}\n", code="1234", app="A", minutes=1, webotp_domain="x.example")

    assert text == "Code 1234\n\n@x.example #1234"


@pytest.mark.parametrize("bad_hash", ["short", "FA+9qCX9VSu2", "FA+9qCX9VS!", "FA+9qCX9VS "])
def test_a_malformed_app_hash_is_refused(bad_hash: str) -> None:
    with pytest.raises(ValueError, match="app_hash"):
        render_sms("{code}", code="1234", app="A", minutes=1, app_hash=bad_hash)


def test_braces_in_the_app_name_are_printed_as_they_are() -> None:
    text = render_sms("{app}: {code}", code="1234", app="{code}", minutes=1)

    assert text == "{code}: 1234"


# --- template validation ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("template", "reason"),
    [
        ("Your {app} code. Valid {minutes} min.", "no {code}"),
        ("Hi {name}, your code is {code}", "unknown placeholder {name}"),
        ("Your code is {}", "unknown placeholder {}"),
        ("Your code is {0}", "unknown placeholder {0}"),
        ("Your code is {code.real}", "unknown placeholder {code.real}"),
        ("Your code is {code!r}", "unknown placeholder {code!r}"),
        ("Your code is {code:>40}", "unknown placeholder {code:>40}"),
        ("Your code is {code", "expected '}'"),
        ("Your code} is {code}", "Single '}'"),
    ],
)
def test_a_bad_template_is_refused_at_start_up_naming_the_locale(
    template: str, reason: str
) -> None:
    with pytest.raises(ConfigError, match="'xx'") as caught:
        check_template(
            template, locale="xx", app="Acme", max_code_length=6, minutes=10, webotp_domain=None
        )

    assert reason in str(caught.value)


def test_a_bad_template_is_a_config_error_not_a_key_error_at_send_time() -> None:
    with pytest.raises(ConfigError, match="unknown placeholder"):
        render_sms("Hi {name}: {code}", code="1234", app="A", minutes=1)


def test_doubled_braces_are_literal_braces() -> None:
    validate_template("{{{code}}}", locale="xx")

    assert render_sms("{{{code}}}", code="1234", app="A", minutes=1) == "{1234}"


def test_a_template_too_long_for_one_sms_is_refused_with_its_measured_size() -> None:
    template = "x" * 150 + " {code}"

    with pytest.raises(ConfigError, match=r"'de'.*161 GSM-7 units, limit 160"):
        check_template(
            template,
            locale="de",
            app="Acme",
            max_code_length=10,
            minutes=10,
            webotp_domain=None,
            allow_app_hash=False,
        )


def check_english(
    template: str, *, code_length: int, webotp_domain: str | None, allow_app_hash: bool
) -> None:
    check_template(
        template,
        locale="en",
        app="Acme",
        max_code_length=code_length,
        minutes=10,
        webotp_domain=webotp_domain,
        allow_app_hash=allow_app_hash,
    )


def test_the_webotp_line_counts_towards_the_one_sms_limit() -> None:
    template = "x" * 110 + " {code}"

    check_english(template, code_length=10, webotp_domain=None, allow_app_hash=False)
    with pytest.raises(ConfigError, match="WebOTP line"):
        check_english(template, code_length=10, webotp_domain=DOMAIN_OF_30, allow_app_hash=False)


def test_the_app_hash_line_counts_towards_the_one_sms_limit() -> None:
    template = "x" * 150 + " {code}"

    check_english(template, code_length=6, webotp_domain=None, allow_app_hash=False)
    with pytest.raises(ConfigError, match="app hash line"):
        check_english(template, code_length=6, webotp_domain=None, allow_app_hash=True)


def test_a_template_that_needs_ucs2_is_held_to_70_units() -> None:
    template = "Twój kod {app}: {code}. Ważny {minutes} min. Nie podawaj go nikomu!!!!"

    with pytest.raises(ConfigError, match=r"'pl'.*UCS-2 units, limit 70"):
        check_template(
            template, locale="pl", app="Acme", max_code_length=6, minutes=10, webotp_domain=None
        )


@pytest.mark.parametrize("domain", ["https://login.example.com", "login.example.com:443", "a b"])
def test_a_webotp_domain_must_be_a_bare_host(domain: str) -> None:
    with pytest.raises(ConfigError, match="WebOTP domain"):
        check_template(
            "{code}", locale="en", app="Acme", max_code_length=6, minutes=10, webotp_domain=domain
        )


# --- locale choice ------------------------------------------------------------------------------


@pytest.mark.parametrize("requested", ["pl", "pl-PL", "PL", " pl_pl ", "pl-Latn-PL"])
def test_the_requested_language_wins_over_region_and_tenant(requested: str) -> None:
    assert choose_locale(requested, "DE", "fr", AVAILABLE_LOCALES) == "pl"


def test_a_region_subtag_with_an_underscore_and_odd_case_is_tolerated() -> None:
    assert choose_locale("PT_br", None, "en", AVAILABLE_LOCALES) == "pt"


def test_a_regional_template_is_preferred_when_the_tenant_has_one() -> None:
    available = {"pt", "pt-BR"}

    assert choose_locale("pt_br", None, "pt", available) == "pt-BR"
    assert choose_locale("pt-PT", None, "pt", available) == "pt"
    assert choose_locale(None, "BR", "en", available) == "pt-BR"


@pytest.mark.parametrize(
    ("region", "locale"),
    [
        ("PL", "pl"),
        ("DE", "de"),
        ("AT", "de"),
        ("CH", "de"),
        ("FR", "fr"),
        ("BE", "fr"),
        ("ES", "es"),
        ("MX", "es"),
        ("AR", "es"),
        ("BR", "pt"),
        ("PT", "pt"),
        ("IT", "it"),
        ("NL", "nl"),
        ("GB", "en"),
        ("pl", "pl"),
    ],
)
def test_without_a_usable_request_the_numbers_region_decides(region: str, locale: str) -> None:
    assert choose_locale("ja", region, "en", AVAILABLE_LOCALES) == locale


def test_an_unmapped_region_falls_back_to_the_tenant_default() -> None:
    assert choose_locale(None, "ZZ", "de", AVAILABLE_LOCALES) == "de"
    assert choose_locale("", None, "it", AVAILABLE_LOCALES) == "it"


def test_a_region_language_without_a_template_falls_back_to_the_tenant_default() -> None:
    assert choose_locale(None, "PL", "de", {"en", "de"}) == "de"


def test_english_is_the_last_resort() -> None:
    assert choose_locale("xx", "ZZ", "ja", AVAILABLE_LOCALES) == "en"
