"""`otpservice check-config`, a failed start and `--version`: every error in one run, then the
warnings for settings that load but are broken or unsafe; and test numbers' validation."""

from __future__ import annotations

import ast
import hashlib
import io
import re
from pathlib import Path

import pytest

from otpservice import __main__ as cli
from otpservice import __version__
from otpservice.config_check import environment_warnings, settings_warnings
from otpservice.errors import ConfigError
from otpservice.settings import ENVIRONMENT_VARIABLES, load_settings

PACKAGE = Path(__file__).resolve().parents[2] / "otpservice"
DIGEST = hashlib.sha256(b"key").hexdigest()
PROD = {
    "OTP_ENV": "production",
    "OTP_REDIS_URL": "redis://redis.internal:6379/0",
    "OTP_PEPPER": "x" * 32,
    "OTP_PUBLIC_URL": "https://otp.example.com",
    "OTP_PROVIDER": "messageflow",
    "OTP_MESSAGEFLOW_PRIORITY_BASE_URL": "https://priority.example",
    "OTP_MESSAGEFLOW_PRIORITY_API_KEY": "k",
    "OTP_MESSAGEFLOW_PRIORITY_APP_KEY": "a",
    "OTP_MESSAGEFLOW_WEBHOOK_SECRET": "s" * 32,
}


def tenant(name: str = "acme", extra: str = "") -> str:
    return f'[[tenants]]\nname = "{name}"\napi_key_sha256 = ["{DIGEST}"]\nsender = "Acme"\n{extra}'


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "otp.toml"
    path.write_text(tenant())
    return path


def run_check(environ: dict[str, str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    status = cli.check_config(environ, out, err)
    return status, out.getvalue(), err.getvalue()


def problems(environ: dict[str, str]) -> tuple[str, ...]:
    with pytest.raises(ConfigError) as raised:
        load_settings(environ)
    return raised.value.problems


# --- every error at once ------------------------------------------------------------------------


def test_check_config_prints_all_three_mistakes_of_a_file_and_exits_1(tmp_path: Path) -> None:
    path = tmp_path / "three-mistakes.toml"
    path.write_text(
        "[policy]\n"
        "code_length = 3\n"  # 1: out of range
        + tenant("shop", 'sendr = "Shop"\n')  # 2: a typo
        + tenant("blog").replace(DIGEST, "not-a-digest")  # 3: not a SHA-256 digest
    )
    status, out, err = run_check({"OTP_CONFIG_FILE": str(path)})
    assert status == 1
    assert out == ""
    assert err.startswith("otpservice: 3 configuration errors:\n")
    assert "policy: code_length must be between 4 and 10" in err
    assert "tenants[0] (shop): unknown key 'sendr' (did you mean 'sender'?)" in err
    assert "tenants[1] (blog).api_key_sha256 must hold hex SHA-256 digests" in err


def test_errors_in_the_environment_and_in_several_tenants_come_together(tmp_path: Path) -> None:
    path = tmp_path / "otp.toml"
    path.write_text(
        tenant("a", "[tenants.policy]\nmax_attempts = 0\n")
        + tenant("b").replace('"Acme"', '"Far too long a sender"')
    )
    found = problems(
        {
            "OTP_PORT": "http",
            "OTP_WORKERS": "0",
            "OTP_PEPPER": "base64:%%%",
            "OTP_CONFIG_FILE": str(path),
            "OTP_SANDBOX_OUTCOMES": "delivered=x",
        }
    )
    named = [
        "OTP_PORT",
        "OTP_WORKERS",
        "OTP_PEPPER",
        "OTP_SANDBOX_OUTCOMES",
        "tenants[0] (a).policy",
        "tenants[1] (b).sender",
    ]
    for name in named:
        assert any(name in problem for problem in found), (name, found)
    assert len(found) == len(named)


def test_production_lists_everything_it_misses_in_one_go() -> None:
    found = "\n".join(problems({"OTP_ENV": "production"}))
    for name in (
        "OTP_REDIS_URL",
        "OTP_PEPPER",
        "OTP_MESSAGEFLOW_PRIORITY_BASE_URL",
        "OTP_MESSAGEFLOW_PRIORITY_API_KEY",
        "OTP_MESSAGEFLOW_PRIORITY_APP_KEY",
        "OTP_MESSAGEFLOW_WEBHOOK_SECRET",
        "OTP_CONFIG_FILE",
    ):
        assert name in found


def test_a_failed_start_lists_every_error_and_exits_1(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(cli.os, "environ", {"OTP_PORT": "x", "OTP_HOST_": "localhost"})
    with pytest.raises(SystemExit) as exited:
        cli.main(["serve"])
    assert exited.value.code == 1
    err = capsys.readouterr().err
    assert "1 configuration error:\n  - OTP_PORT must be a whole number" in err
    assert "OTP_HOST_ is not a setting of otpservice and is ignored; did you mean OTP_HOST?" in err


@pytest.mark.parametrize("content", [None, b"\xff\xfe[[tenants]]"], ids=["a-directory", "binary"])
def test_a_config_file_that_cannot_be_read_is_an_error_not_a_traceback(
    tmp_path: Path, content: bytes | None
) -> None:
    path = tmp_path / "otp.toml"
    if content is None:
        path.mkdir()
    else:
        path.write_bytes(content)
    status, _, err = run_check({"OTP_CONFIG_FILE": str(path), "OTP_PORT": "x"})
    assert status == 1
    assert f"OTP_CONFIG_FILE: {path} cannot be read" in err
    assert "OTP_PORT" in err


def test_a_good_configuration_is_ok_and_exits_0(config: Path) -> None:
    status, out, err = run_check({**PROD, "OTP_CONFIG_FILE": str(config)})
    assert (status, err) == (0, "")
    assert out.startswith("configuration OK: env=production provider=messageflow tenants=[acme]")


def test_warnings_alone_are_printed_and_exit_0(config: Path) -> None:
    environ = {**PROD, "OTP_CONFIG_FILE": str(config), "OTP_PUBLIC_URL": ""}
    status, out, err = run_check(environ)
    assert status == 0
    assert out.startswith("configuration OK")
    assert err.startswith("otpservice: 1 warning:\n  - OTP_PUBLIC_URL is not set")


def test_the_version_is_printed(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out == f"otpservice {__version__}\n"


# --- one test per warning -----------------------------------------------------------------------


def warnings_for(environ: dict[str, str]) -> list[str]:
    return environment_warnings(environ, installed=lambda _: True) + settings_warnings(
        load_settings(environ), environ
    )


def test_production_without_a_public_url_warns_that_no_delivery_report_will_arrive(
    config: Path,
) -> None:
    environ = {**PROD, "OTP_CONFIG_FILE": str(config)}
    assert warnings_for(environ) == []
    del environ["OTP_PUBLIC_URL"]
    [warning] = warnings_for(environ)
    assert warning.startswith("OTP_PUBLIC_URL is not set: MessageFlow is not told where")
    assert "so none will arrive" in warning
    # Flowstates is told in its own panel, not by each SMS.
    flowstates = {
        **{k: v for k, v in environ.items() if "MESSAGEFLOW" not in k},
        "OTP_PROVIDER": "flowstates",
        "OTP_FLOWSTATES_BASE_URL": "https://fs.example",
        "OTP_FLOWSTATES_API_KEY": "k",
        "OTP_FLOWSTATES_WEBHOOK_SECRET": "s" * 32,
    }
    assert warnings_for(flowstates) == []


def test_a_plain_http_provider_url_warns(config: Path) -> None:
    environ = {**PROD, "OTP_CONFIG_FILE": str(config)}
    environ["OTP_MESSAGEFLOW_PRIORITY_BASE_URL"] = "http://priority.example"
    [warning] = warnings_for(environ)
    assert warning.startswith("OTP_MESSAGEFLOW_PRIORITY_BASE_URL is http://")
    # A provider on this very host (a local relay, a test double) crosses no network.
    environ["OTP_MESSAGEFLOW_PRIORITY_BASE_URL"] = "http://127.0.0.1:9000"
    assert warnings_for(environ) == []


def test_a_plain_http_public_url_in_production_warns(config: Path) -> None:
    environ = {**PROD, "OTP_CONFIG_FILE": str(config), "OTP_PUBLIC_URL": "http://otp.example.com"}
    [warning] = warnings_for(environ)
    assert warning.startswith("OTP_PUBLIC_URL is http://")


def test_a_webhook_secret_under_32_characters_warns_without_showing_it(config: Path) -> None:
    environ = {**PROD, "OTP_CONFIG_FILE": str(config)}
    environ["OTP_MESSAGEFLOW_WEBHOOK_SECRET"] = "hunter2-secret"
    [warning] = warnings_for(environ)
    assert warning.startswith("OTP_MESSAGEFLOW_WEBHOOK_SECRET has 14 characters")
    assert "hunter2" not in warning


def test_an_unknown_otp_variable_is_named_with_the_closest_known_one() -> None:
    environ = {"OTP_REDIS_ULR": "redis://x", "OTP_FROBNICATE": "1", "OTP_TEST_REDIS_MODE": "x"}
    assert warnings_for(environ) == [
        "OTP_FROBNICATE is not a setting of otpservice and is ignored",
        "OTP_REDIS_ULR is not a setting of otpservice and is ignored; did you mean OTP_REDIS_URL?",
    ]


def test_a_country_code_no_number_belongs_to_warns(tmp_path: Path) -> None:
    path = tmp_path / "otp.toml"
    path.write_text(
        tenant(
            "shop",
            "[tenants.policy]\n"
            'allowed_countries = ["PL", "UK"]\n'
            "[tenants.policy.fraud]\n"
            "country_hourly_caps = {XX = 10}\n",
        )
    )
    found = warnings_for({"OTP_CONFIG_FILE": str(path)})
    hint = ", so they match nothing (ISO 3166 alpha-2 codes, e.g. GB for the United Kingdom)"
    countries = "tenant shop: policy.allowed_countries names regions no phone number belongs to:"
    caps = "tenant shop: policy.fraud.country_hourly_caps names regions no phone number belongs to:"
    assert found == [f"{countries} UK (did you mean GB?){hint}", f"{caps} XX{hint}"]


def test_granian_chosen_but_not_installed_warns() -> None:
    environ = {"OTP_SERVER": "granian"}
    assert environment_warnings(environ, installed=lambda _: True) == []
    [warning] = environment_warnings(environ, installed=lambda name: name != "granian")
    assert warning.startswith("OTP_SERVER=granian but the granian package is not installed")


def test_test_numbers_in_production_warn_with_the_tenant_and_how_many(tmp_path: Path) -> None:
    path = tmp_path / "otp.toml"
    numbers = 'test_numbers = {"+48601000001" = "111111", "+48601000002" = "222222"}\n'
    path.write_text(tenant("shop", numbers) + tenant("blog").replace(DIGEST, "ab" * 32))
    environ = {**PROD, "OTP_CONFIG_FILE": str(path)}
    [warning] = warnings_for(environ)
    assert warning.startswith("tenant shop has 2 test number(s) in production")
    assert "111111" not in warning
    assert "+48601000001" not in warning
    # Development: nothing to warn about.
    assert warnings_for({"OTP_CONFIG_FILE": str(path)}) == []


def test_a_console_asked_for_without_support_users_warns(config: Path) -> None:
    environ = {**PROD, "OTP_CONFIG_FILE": str(config), "OTP_CONSOLE": "true"}
    [warning] = warnings_for(environ)
    assert warning.startswith(
        "OTP_CONSOLE is on but the configuration file has no [[support_users]]"
    )
    # Off, or on by default in development without being asked for: nothing to say.
    assert warnings_for({**environ, "OTP_CONSOLE": "false"}) == []
    assert warnings_for({"OTP_CONFIG_FILE": str(config)}) == []


def test_serve_logs_the_warnings_at_start(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(cli.os, "environ", {"OTP_WROKERS": "2", "OTP_SANDBOX_ECHO": "off"})
    monkeypatch.setattr(cli.signal, "signal", lambda *_: None)
    monkeypatch.setattr(cli, "_serve_uvicorn", lambda _: None)
    cli.serve(load_settings({}))
    assert (
        "configuration: OTP_WROKERS is not a setting of otpservice and is ignored; did you mean"
        " OTP_WORKERS?" in caplog.messages
    )


def test_every_variable_the_package_reads_is_known() -> None:
    """A variable added to settings.py must be added to ENVIRONMENT_VARIABLES, or check-config
    would call it a typo."""
    read: set[str] = set()
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                read.update(re.findall(r"\bOTP_[A-Z0-9_]*[A-Z0-9]\b", node.value))
    # f"OTP_{provider.upper()}_WEBHOOK_SECRET", for each provider.
    read.update(f"OTP_{p}_WEBHOOK_SECRET" for p in ("MESSAGEFLOW", "FLOWSTATES", "SANDBOX"))
    read -= {"OTP_TEST_"}
    assert sorted(read - ENVIRONMENT_VARIABLES) == []


# --- test numbers -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("numbers", "problem"),
    [
        ('{"+4860" = "123456"}', "'+4860': Not a valid phone number: too short."),
        ('{"48601000001" = "123456"}', "'48601000001': Not in E.164 form"),
        ('{"+48601000001" = "12345"}', "the code of '+48601000001' must be exactly 6 digits"),
        ('{"+48601000001" = "12345a"}', "the code of '+48601000001' must be exactly 6 digits"),
        (
            '{"+48601000001" = "\uff11\uff12\uff13\uff14\uff15\uff16"}',
            "the code of '+48601000001' must be exactly 6",
        ),
        (
            '{"+48601000001" = "123456", "+48 601 000 001" = "123456"}',
            "'+48 601 000 001' is listed twice (as +48601000001)",
        ),
        ('{"+4915112345678" = "123456"}', "'+4915112345678': Codes cannot be sent to numbers of"),
        ('{"+48221234567" = "123456"}', "'+48221234567': Codes cannot be sent to fixed-line"),
    ],
)
def test_test_numbers_and_their_codes_are_validated(
    tmp_path: Path, numbers: str, problem: str
) -> None:
    path = tmp_path / "otp.toml"
    policy = '[tenants.policy]\nallowed_countries = ["PL"]\n'
    path.write_text(tenant("shop", f"test_numbers = {numbers}\n{policy}"))
    [found] = problems({"OTP_CONFIG_FILE": str(path)})
    assert found.startswith("OTP_CONFIG_FILE: tenants[0] (shop).test_numbers: ")
    assert problem in found


def test_test_numbers_follow_the_tenants_code_length_and_are_kept_hidden(tmp_path: Path) -> None:
    path = tmp_path / "otp.toml"
    numbers = 'test_numbers = {"+48 601 000 001" = "12345678"}\n'
    path.write_text(tenant("shop", numbers + "[tenants.policy]\ncode_length = 8\n"))
    settings = load_settings({"OTP_CONFIG_FILE": str(path)})
    [shop] = settings.tenants
    assert list(shop.test_numbers) == ["+48601000001"]
    assert shop.test_numbers["+48601000001"].reveal() == b"12345678"
    assert "12345678" not in repr(settings)
