"""The SMS text: built-in templates per locale, rendering with phone autofill lines, locale choice.

Also counts GSM-7 / UCS-2 segments, so a template that would split into two SMS fails at start-up.
"""

from __future__ import annotations

import functools
import re
import string
from types import MappingProxyType
from typing import TYPE_CHECKING, Final, Literal

import msgspec

from otpservice.errors import ConfigError

if TYPE_CHECKING:
    from collections.abc import Collection, Mapping

# Every built-in text is GSM-7 on purpose: a UCS-2 segment holds 70 units, and the WebOTP line
# alone can take 45 of them, so no natural sentence would fit one SMS. Where the language needs a
# letter outside GSM 03.38 (Polish ó/ż, Spanish ó, Portuguese ó/ã), the wording avoids it
# ("clave", "Aktywny") or, for Portuguese "codigo", drops the accent as Brazilian SMS commonly do.
# "{minutes} min" sidesteps plural forms (Polish has three).
DEFAULT_TEMPLATES: Final[Mapping[str, str]] = MappingProxyType(
    {
        "en": "Your {app} code is {code}. Valid for {minutes} min. Don't share it.",
        "pl": "Kod {app}: {code}. Aktywny przez {minutes} min. Nie przekazuj go nikomu.",
        "de": "Ihr Code für {app}: {code}. Gültig für {minutes} Min. Nicht weitergeben.",
        "fr": "Votre code {app} : {code}. Valable {minutes} min. Ne le communiquez à personne.",
        "es": "Tu clave de {app}: {code}. Expira en {minutes} min. No la compartas con nadie.",
        "pt": "Seu codigo {app} é {code}. Expira em {minutes} min. Nunca compartilhe.",
        "it": "Il tuo codice {app} è {code}. Valido per {minutes} min. Non condividerlo.",
        "nl": "Je code voor {app} is {code}. Geldig voor {minutes} min. Deel hem met niemand.",
    }
)
AVAILABLE_LOCALES: Final[frozenset[str]] = frozenset(DEFAULT_TEMPLATES)

PLACEHOLDERS: Final[frozenset[str]] = frozenset({"code", "app", "minutes"})
APP_HASH_LENGTH: Final = 11
APP_HASH_PATTERN = "^[A-Za-z0-9+/]{11}$"
_APP_HASH = re.compile(APP_HASH_PATTERN)
# A bare host as the WebOTP / origin-bound-code format wants it: no scheme, port or path.
_HOST = re.compile(
    r"(?=.{1,253}\Z)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*"
)

# GSM 03.38 default alphabet. 0x1B is the escape to the extension table, not a character.
_GSM7_BASIC: Final = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM7_EXTENSION: Final = frozenset("\f^{}\\[~]|€")

_SINGLE_LIMIT: Final = {"GSM-7": 160, "UCS-2": 70}
# Multipart SMS lose room to the concatenation header (UDH).
_PART_LIMIT: Final = {"GSM-7": 153, "UCS-2": 67}


class SmsEncoding(msgspec.Struct, frozen=True, kw_only=True):
    """How a text travels as SMS: its alphabet, its size in that alphabet's units, its parts."""

    encoding: Literal["GSM-7", "UCS-2"]
    units: int
    """Septets for GSM-7 (extension characters count 2), UTF-16 code units for UCS-2."""
    segments: int


def sms_encoding(text: str) -> SmsEncoding:
    """Measure `text` as a phone network would send it."""
    if all(ch in _GSM7_BASIC or ch in _GSM7_EXTENSION for ch in text):
        encoding: Literal["GSM-7", "UCS-2"] = "GSM-7"
        weights = [2 if ch in _GSM7_EXTENSION else 1 for ch in text]
    else:
        encoding = "UCS-2"
        weights = [2 if ord(ch) > 0xFFFF else 1 for ch in text]
    units = sum(weights)
    if units <= _SINGLE_LIMIT[encoding]:
        return SmsEncoding(encoding=encoding, units=units, segments=1)
    # Packed part by part rather than divided: a phone never splits an escape sequence or a
    # surrogate pair across two parts, so such a character at a boundary starts a new part.
    part_limit = _PART_LIMIT[encoding]
    segments, used = 1, 0
    for weight in weights:
        if used + weight > part_limit:
            segments, used = segments + 1, 0
        used += weight
    return SmsEncoding(encoding=encoding, units=units, segments=segments)


@functools.lru_cache(maxsize=256)
def _template_problem(template: str) -> str | None:
    """Say why `template` cannot be rendered safely, or return None when it can."""
    try:
        fields = list(string.Formatter().parse(template))
    except ValueError as exc:  # "Single '}' encountered", "expected '}' before end of string"
        return f"{exc} (write {{{{ or }}}} for a literal brace)"
    names: set[str] = set()
    for _, name, spec, conversion in fields:
        if name is None:
            continue
        if name not in PLACEHOLDERS or spec or conversion:
            # Format specs and conversions would let a template change the code's shape.
            shown = name + (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "")
            return f"unknown placeholder {{{shown}}}; use only {{code}}, {{app}}, {{minutes}}"
        names.add(name)
    if "code" not in names:
        return "it has no {code} placeholder"
    return None


def validate_template(template: str, *, locale: str) -> None:
    """Raise ConfigError unless `template` uses only {code}, {app}, {minutes} and has {code}."""
    problem = _template_problem(template)
    if problem is not None:
        raise ConfigError(f"SMS template for locale {locale!r}: {problem}")


def is_app_hash(value: str) -> bool:
    """Tell whether `value` looks like an Android SMS Retriever app hash."""
    return _APP_HASH.fullmatch(value) is not None


def render_sms(
    template: str,
    *,
    code: str,
    app: str,
    minutes: int,
    webotp_domain: str | None = None,
    app_hash: str | None = None,
) -> str:
    """Fill in `template` and append the last line that lets the phone autofill the code.

    With `app_hash`, the hash alone on the last line (Android SMS Retriever); otherwise, with
    `webotp_domain`, `@<domain> #<code>` (WebOTP, iOS origin-bound codes). Both formats claim the
    last line, and an app that sent its hash is the one that will read the SMS.
    `minutes` is the code's lifetime rounded up by the caller.
    Raises ConfigError for a template that `validate_template` would refuse and ValueError for a
    malformed `app_hash` (the API validates it first).
    """
    problem = _template_problem(template)
    if problem is not None:
        raise ConfigError(f"SMS template: {problem}")
    body = template.format_map({"code": code, "app": app, "minutes": minutes})
    if app_hash is not None:
        if not is_app_hash(app_hash):
            raise ValueError("app_hash must be 11 characters of A-Z, a-z, 0-9, + and /")
        # rstrip: a trailing newline in a template must not push our line off the last line.
        return f"{body.rstrip()}\n\n{app_hash}"
    if webotp_domain:
        return f"{body.rstrip()}\n\n@{webotp_domain} #{code}"
    return body


def check_template(
    template: str,
    *,
    locale: str,
    app: str,
    max_code_length: int,
    minutes: int,
    webotp_domain: str | None,
    allow_app_hash: bool = True,
) -> None:
    """Raise ConfigError unless `template` renders into one SMS in its worst case.

    The worst case is a code of `max_code_length` digits with the longer of the two autofill
    lines the service may append: the WebOTP line (when a domain is set) or an app hash line.
    """
    validate_template(template, locale=locale)
    if webotp_domain is not None and _HOST.fullmatch(webotp_domain) is None:
        raise ConfigError(
            f"WebOTP domain {webotp_domain!r} is not a bare host name such as login.example.com"
        )
    code = "9" * max_code_length
    variants = {
        "without an autofill line": render_sms(template, code=code, app=app, minutes=minutes)
    }
    if webotp_domain:
        variants["with the WebOTP line"] = render_sms(
            template, code=code, app=app, minutes=minutes, webotp_domain=webotp_domain
        )
    if allow_app_hash:
        variants["with an app hash line"] = render_sms(
            template, code=code, app=app, minutes=minutes, app_hash="A" * APP_HASH_LENGTH
        )
    measured = {variant: sms_encoding(text) for variant, text in variants.items()}
    variant, worst = max(measured.items(), key=lambda item: (item[1].segments, item[1].units))
    if worst.segments > 1:
        raise ConfigError(
            f"SMS template for locale {locale!r} does not fit one SMS {variant} and a "
            f"{max_code_length}-digit code: {worst.units} {worst.encoding} units, "
            f"limit {_SINGLE_LIMIT[worst.encoding]}"
        )


# The regions (ISO 3166-1 alpha-2) whose numbers most people would want texted in a language.
# It names languages beyond the built-in ones because a tenant may bring its own templates.
# Belgium goes to French as the brief asks, although Dutch speakers are the majority there.
_LANGUAGE_REGIONS: Final[Mapping[str, str]] = MappingProxyType(
    {
        "en": "GB US IE AU NZ CA ZA SG IN NG KE",
        "pl": "PL",
        "de": "DE AT CH LI",
        "fr": "FR BE LU MC SN CI ML BF NE TG BJ GN CM CD CG GA MG RE GP MQ GF YT PF NC PM BL MF WF",
        "es": "ES MX AR CO CL PE VE EC GT CU BO DO HN PY SV NI CR PA UY PR GQ",
        "pt": "BR PT AO MZ CV GW ST TL",
        "it": "IT SM VA",
        "nl": "NL SR AW CW SX",
        "sv": "SE", "nb": "NO", "da": "DK", "fi": "FI", "cs": "CZ", "sk": "SK", "hu": "HU",
        "ro": "RO", "bg": "BG", "el": "GR", "hr": "HR", "sl": "SI", "lt": "LT", "lv": "LV",
        "et": "EE", "uk": "UA", "tr": "TR", "ru": "RU", "ja": "JP", "ko": "KR", "zh": "CN TW",
        "he": "IL",
    }
)  # fmt: skip
_REGION_LANGUAGE: Final[Mapping[str, str]] = MappingProxyType(
    {
        region: language
        for language, regions in _LANGUAGE_REGIONS.items()
        for region in regions.split()
    }
)


def _lookup(tag: str, available: Mapping[str, str]) -> str | None:
    """RFC 4647 lookup: try `pt-br-x`, then `pt-br`, then `pt` against the available tags."""
    subtags = [part for part in tag.strip().lower().replace("_", "-").split("-") if part]
    while subtags:
        found = available.get("-".join(subtags))
        if found is not None:
            return found
        subtags.pop()
    return None


def choose_locale(
    requested: str | None,
    region: str | None,
    tenant_default: str,
    available: Collection[str],
) -> str:
    """Pick the template locale: the requested tag, the number's region, the tenant's, or "en".

    Tags match case-insensitively, `_` counts as `-`, and `pl-PL` falls back to `pl`. The
    answer is spelled as in `available` (or is "en" when nothing matched).
    """
    by_key = {tag.lower().replace("_", "-"): tag for tag in available}
    if requested and (found := _lookup(requested, by_key)):
        return found
    if region and (language := _REGION_LANGUAGE.get(region.strip().upper())):
        found = _lookup(f"{language}-{region.strip()}", by_key)
        if found:
            return found
    return _lookup(tenant_default, by_key) or "en"
