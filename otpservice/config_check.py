"""Warnings about settings that load_settings accepts but that are broken or unsafe in use.

`otpservice check-config` prints them after the errors (or "configuration OK"), and
`otpservice serve` logs them at start. Each says what will go wrong and what to set instead;
none shows a secret or a code.
"""

from __future__ import annotations

import difflib
import importlib.util
from collections.abc import Callable, Mapping
from urllib.parse import urlsplit

import phonenumbers

from otpservice.settings import ENVIRONMENT_VARIABLES, Settings

MIN_WEBHOOK_SECRET_CHARS = 32
_RESERVED_PREFIXES = ("OTP_TEST_",)
"""Read by the test suite, not by the service: never reported as unknown."""
_LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
_WEBHOOK_SECRETS = {
    "messageflow": "OTP_MESSAGEFLOW_WEBHOOK_SECRET",
    "flowstates": "OTP_FLOWSTATES_WEBHOOK_SECRET",
    "sandbox": "OTP_SANDBOX_WEBHOOK_SECRET",
}
_LIKELY_MEANT = {"UK": "GB", "EL": "GR", "EN": "GB"}
"""Codes people write for a country whose ISO 3166 code is another one."""


def module_installed(name: str) -> bool:
    return importlib.util.find_spec(name) is not None


def environment_warnings(
    environ: Mapping[str, str], *, installed: Callable[[str], bool] = module_installed
) -> list[str]:
    """What the environment alone shows: told even when the settings have errors, since a
    misspelt variable is often why a required one is missing."""
    out = [
        _unknown_variable(name)
        for name in sorted(environ)
        if name.startswith("OTP_")
        and name not in ENVIRONMENT_VARIABLES
        and not name.startswith(_RESERVED_PREFIXES)
    ]
    if environ.get("OTP_SERVER", "").strip().lower() == "granian" and not installed("granian"):
        out.append(
            "OTP_SERVER=granian but the granian package is not installed: `otpservice serve`"
            " will stop at once (pip install 'otpservice[granian]', or unset OTP_SERVER)"
        )
    return out


def settings_warnings(settings: Settings, environ: Mapping[str, str]) -> list[str]:
    """What is legal but broken or unsafe in settings that loaded."""
    return [
        *_public_url(settings),
        *_plain_http(settings),
        *_short_webhook_secrets(settings, environ),
        *_unknown_countries(settings),
        *_test_numbers(settings),
        *_console_without_users(settings, environ),
    ]


def _unknown_variable(name: str) -> str:
    close = difflib.get_close_matches(name, sorted(ENVIRONMENT_VARIABLES), n=1, cutoff=0.75)
    hint = f"; did you mean {close[0]}?" if close else ""
    return f"{name} is not a setting of otpservice and is ignored{hint}"


def _public_url(settings: Settings) -> list[str]:
    # Flowstates takes its webhook URL from its own panel; MessageFlow only from each SMS.
    if (
        settings.production
        and settings.public_url is None
        and settings.provider.name == "messageflow"
    ):
        warning = (
            "OTP_PUBLIC_URL is not set: MessageFlow is not told where to post delivery reports"
            " (each SMS carries webhookUrl=$OTP_PUBLIC_URL/webhooks/messageflow), so none will"
            " arrive: every SMS stays `submitted`, and a resend after an undelivered SMS waits"
            " for the whole cooldown; set it to the service's public https:// base URL"
        )
        return [warning]
    return []


def _plain_http(settings: Settings) -> list[str]:
    provider = settings.provider
    urls = {
        "OTP_MESSAGEFLOW_PRIORITY_BASE_URL": provider.messageflow and provider.messageflow.base_url,
        "OTP_FLOWSTATES_BASE_URL": provider.flowstates and provider.flowstates.base_url,
    }
    out = [
        f"{name} is http://: the provider's API keys and every SMS, code included, cross the"
        " network unencrypted; use its https:// URL"
        for name, url in urls.items()
        if url and _remote_http(url)
    ]
    if settings.production and settings.public_url and _remote_http(settings.public_url):
        out.append(
            "OTP_PUBLIC_URL is http://: providers would post delivery reports, with their"
            " webhook secret, unencrypted; put the service behind https://"
        )
    return out


def _remote_http(url: str) -> bool:
    """Plain http to another machine (a provider or proxy on this host is only loopback)."""
    parts = urlsplit(url)
    return parts.scheme == "http" and (parts.hostname or "") not in _LOOPBACK_HOSTS


def _short_webhook_secrets(settings: Settings, environ: Mapping[str, str]) -> list[str]:
    out = []
    for provider, name in _WEBHOOK_SECRETS.items():
        if provider not in settings.provider.webhook_secrets:
            continue
        given = environ.get(name, "").strip()
        if given and len(given) < MIN_WEBHOOK_SECRET_CHARS:
            out.append(
                f"{name} has {len(given)} characters: anyone who guesses it can post fake"
                f" delivery reports; use at least {MIN_WEBHOOK_SECRET_CHARS} random ones"
                " (python -c 'import secrets; print(secrets.token_urlsafe(32))')"
            )
    return out


def _unknown_countries(settings: Settings) -> list[str]:
    out = []
    for tenant in settings.tenants:
        named = {
            "allowed_countries": tenant.policy.allowed_countries,
            "fraud.country_hourly_caps": tuple(tenant.policy.fraud.country_hourly_caps),
        }
        for field, regions in named.items():
            unknown = [
                f"{r} (did you mean {_LIKELY_MEANT[r]}?)" if r in _LIKELY_MEANT else r
                for r in regions
                if r not in phonenumbers.SUPPORTED_REGIONS
            ]
            if unknown:
                out.append(
                    f"tenant {tenant.name}: policy.{field} names regions no phone number"
                    f" belongs to: {', '.join(unknown)}, so they match nothing"
                    " (ISO 3166 alpha-2 codes, e.g. GB for the United Kingdom)"
                )
    return out


def _test_numbers(settings: Settings) -> list[str]:
    if not settings.production:
        return []
    return [
        f"tenant {tenant.name} has {len(tenant.test_numbers)} test number(s) in production:"
        " anyone who knows one and its fixed code can sign in as it, and no SMS is sent to it;"
        " keep them to app-store review accounts"
        for tenant in settings.tenants
        if tenant.test_numbers
    ]


def _console_without_users(settings: Settings, environ: Mapping[str, str]) -> list[str]:
    """Asked for (OTP_CONSOLE set) but nobody can sign in: the page would only refuse logins."""
    if not settings.console or settings.support_users or "OTP_CONSOLE" not in environ:
        return []
    message = (
        "OTP_CONSOLE is on but the configuration file has no [[support_users]]: nobody can sign"
        " in to /console/ (add users with hashes from `otpservice hash-password`, or set"
        " OTP_CONSOLE=false)"
    )
    return [message]
