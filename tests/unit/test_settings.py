"""Configuration: defaults, production refusals and errors that name the setting."""

from __future__ import annotations

import ast
import hashlib
from pathlib import Path

import pytest

from otpservice.errors import ConfigError
from otpservice.settings import Settings, default, load_settings

PROD_BASE = {
    "OTP_ENV": "production",
    "OTP_REDIS_URL": "redis://127.0.0.1:6379/0",
    "OTP_PEPPER": "x" * 32,
    "OTP_PROVIDER": "messageflow",
    "OTP_MESSAGEFLOW_PRIORITY_BASE_URL": "https://priority.example",
    "OTP_MESSAGEFLOW_PRIORITY_API_KEY": "k",
    "OTP_MESSAGEFLOW_PRIORITY_APP_KEY": "a",
    "OTP_MESSAGEFLOW_WEBHOOK_SECRET": "s",
}


def _config(tmp_path: Path, body: str) -> str:
    path = tmp_path / "otp.toml"
    path.write_text(body)
    return str(path)


def _tenant_file(tmp_path: Path, extra: str = "") -> str:
    digest = hashlib.sha256(b"key").hexdigest()
    return _config(
        tmp_path,
        f'[[tenants]]\nname = "acme"\napi_key_sha256 = ["{digest}"]\nsender = "Acme"\n{extra}',
    )


def test_development_defaults_need_nothing() -> None:
    settings = load_settings({})
    assert settings.env == "development"
    assert settings.redis_url is None
    assert settings.provider.name == "sandbox"
    assert len(settings.pepper.reveal()) == 32
    assert settings.dev_api_key is not None
    assert settings.tenants[0].name == "dev"


def test_secrets_never_show_in_a_repr() -> None:
    settings = load_settings({"OTP_PEPPER": "super-secret-pepper", "OTP_DEV_API_KEY": "dev-key-1"})
    text = repr(settings)
    assert "super-secret-pepper" not in text
    assert "dev-key-1" not in text


def test_production_starts_with_complete_settings(tmp_path: Path) -> None:
    settings = load_settings({**PROD_BASE, "OTP_CONFIG_FILE": _tenant_file(tmp_path)})
    assert settings.production
    assert settings.provider.messageflow is not None
    assert settings.host == "0.0.0.0"  # noqa: S104 - the production default, asserted


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"OTP_REDIS_URL": ""}, "OTP_REDIS_URL"),
        ({"OTP_PEPPER": "short"}, "OTP_PEPPER"),
        ({"OTP_PEPPER": ""}, "OTP_PEPPER"),
        ({"OTP_PROVIDER": "sandbox"}, "OTP_PROVIDER"),
        ({"OTP_MESSAGEFLOW_PRIORITY_APP_KEY": ""}, "OTP_MESSAGEFLOW_PRIORITY_APP_KEY"),
        ({"OTP_MESSAGEFLOW_WEBHOOK_SECRET": ""}, "OTP_MESSAGEFLOW_WEBHOOK_SECRET"),
        ({"OTP_ARGON2_PROFILE": "test"}, "OTP_ARGON2_PROFILE"),
    ],
)
def test_production_refuses_to_start_without_what_it_needs(
    tmp_path: Path, change: dict[str, str], named: str
) -> None:
    env = {**PROD_BASE, "OTP_CONFIG_FILE": _tenant_file(tmp_path), **change}
    with pytest.raises(ConfigError, match=named):
        load_settings(env)


def test_production_needs_a_tenant_file() -> None:
    with pytest.raises(ConfigError, match="OTP_CONFIG_FILE"):
        load_settings(PROD_BASE)


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"OTP_PORT": "http"}, "OTP_PORT"),
        ({"OTP_PORT": "70000"}, "OTP_PORT"),
        ({"OTP_ENV": "staging"}, "OTP_ENV"),
        ({"OTP_REDIS_URL": "mysql://x"}, "OTP_REDIS_URL"),
        ({"OTP_PEPPER": "base64:%%%"}, "OTP_PEPPER"),
        (
            {"OTP_PROVIDER_TOTAL_TIMEOUT_SECONDS": "1", "OTP_PROVIDER_READ_TIMEOUT_SECONDS": "5"},
            "OTP_PROVIDER_TOTAL_TIMEOUT_SECONDS",
        ),
        ({"OTP_CONFIG_FILE": "/nonexistent/otp.toml"}, "OTP_CONFIG_FILE"),
        ({"OTP_SERVER": "gunicorn"}, "OTP_SERVER"),
        ({"OTP_SERVER": "uvicorn[standard]"}, "OTP_SERVER"),
    ],
)
def test_bad_settings_are_named_in_the_error(env: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigError, match=named):
        load_settings(env)


@pytest.mark.parametrize(
    ("raw", "server"),
    [
        (None, "uvicorn"),
        ("", "uvicorn"),
        ("uvicorn", "uvicorn"),
        ("granian", "granian"),
        (" Granian ", "granian"),
    ],
)
def test_the_asgi_server_is_chosen_by_otp_server(raw: str | None, server: str) -> None:
    settings = load_settings({} if raw is None else {"OTP_SERVER": raw})
    assert settings.server == server


def test_tenant_policy_overrides_the_file_defaults(tmp_path: Path) -> None:
    digest = hashlib.sha256(b"key").hexdigest()
    path = _config(
        tmp_path,
        "[policy]\ncode_length = 8\n[policy.limits]\nsends_per_number_per_hour = 3\n"
        f'[[tenants]]\nname = "acme"\napi_key_sha256 = ["{digest}"]\nsender = "Acme"\n'
        '[tenants.policy]\nmax_attempts = 3\nallowed_countries = ["PL", "DE"]\n',
    )
    tenant = load_settings({"OTP_CONFIG_FILE": path}).tenants[0]
    assert tenant.policy.code_length == 8
    assert tenant.policy.max_attempts == 3
    assert tenant.policy.limits.sends_per_number_per_hour == 3
    assert tenant.policy.allowed_countries == ("PL", "DE")
    assert tenant.api_key_digests == (bytes.fromhex(digest),)


@pytest.mark.parametrize(
    ("extra", "named"),
    [
        ("[tenants.policy]\ncode_length = 12\n", "code_length"),
        ('[tenants.policy]\ncode_length = "six"\n', "code_length"),
        ("[tenants.policy.limits]\nfailed_checks_per_number = 500\n", "NIST"),
        ('[tenants.policy]\nblocked_number_types = ["FAX"]\n', "blocked_number_types"),
        ('[tenants.policy]\nallowed_countries = ["Poland"]\n', "allowed_countries"),
        ("[tenants.policy]\nunknown_knob = 1\n", "unknown_knob"),
    ],
)
def test_bad_tenant_policy_is_refused_with_its_name(tmp_path: Path, extra: str, named: str) -> None:
    with pytest.raises(ConfigError, match=named):
        load_settings({"OTP_CONFIG_FILE": _tenant_file(tmp_path, extra)})


def test_api_keys_must_be_sha256_digests(tmp_path: Path) -> None:
    path = _config(
        tmp_path, '[[tenants]]\nname = "acme"\napi_key_sha256 = ["plain-key"]\nsender = "Acme"\n'
    )
    with pytest.raises(ConfigError, match="api_key_sha256"):
        load_settings({"OTP_CONFIG_FILE": path})


def test_a_tenant_template_that_cannot_fit_one_sms_stops_the_start(tmp_path: Path) -> None:
    long_text = "Your {app} code is {code}. " + "Please read this carefully. " * 6
    path = _tenant_file(tmp_path, f'[tenants.templates]\nen = "{long_text}"\n')
    with pytest.raises(ConfigError, match="acme"):
        load_settings({"OTP_CONFIG_FILE": path})


def test_a_tenant_template_without_the_code_is_refused(tmp_path: Path) -> None:
    path = _tenant_file(tmp_path, '[tenants.templates]\nen = "Hello from {app}"\n')
    with pytest.raises(ConfigError, match="code"):
        load_settings({"OTP_CONFIG_FILE": path})


def test_a_webotp_domain_must_be_a_bare_host(tmp_path: Path) -> None:
    path = _tenant_file(tmp_path, 'webotp_domain = "https://login.example.com/"\n')
    with pytest.raises(ConfigError, match="WebOTP"):
        load_settings({"OTP_CONFIG_FILE": path})


def test_the_deployment_checks_know_the_services_shutdown_deadline() -> None:
    """deploy/checks runs without the service's dependencies (and the tests without its own), so
    it keeps a copy of this default, read here from its source: the copy must follow the
    service's."""
    source = (Path(__file__).parents[2] / "deploy" / "checks" / "workload.py").read_text()
    copies = [
        node.value.value
        for node in ast.parse(source).body
        if isinstance(node, ast.Assign)
        and [getattr(t, "id", None) for t in node.targets] == ["DEFAULT_SHUTDOWN_DEADLINE"]
        and isinstance(node.value, ast.Constant)
    ]
    assert copies == [default(Settings, "shutdown_deadline")]
