"""The development banner of `otpservice serve` says what is really in use, and no secret."""

from __future__ import annotations

import hashlib
from pathlib import Path

from otpservice.__main__ import banner, redis_location
from otpservice.settings import load_settings


def test_the_defaults_are_the_embedded_store_a_random_pepper_and_a_generated_key() -> None:
    settings = load_settings({})
    assert settings.dev_api_key is not None
    key = settings.dev_api_key.reveal().decode()
    text = banner(settings, {})
    assert "store:  embedded in-process Redis emulation" in text
    assert "pepper: random, new on every start" in text
    assert f"Development API key (generated, shown once):  {key}" in text
    assert f'-H "Authorization: Bearer {key}"' in text
    assert "each SMS, code included, is printed below" in text
    assert "GET http://127.0.0.1:8000/dev/inbox?to=+48601234567 (with the API key)" in text


def test_a_configured_redis_pepper_and_tenants_are_shown_as_such_without_secrets(
    tmp_path: Path,
) -> None:
    config = tmp_path / "otp.toml"
    digest = hashlib.sha256(b"the-real-key").hexdigest()
    config.write_text(f'[[tenants]]\nname = "shop"\napi_key_sha256 = ["{digest}"]\nsender = "S"\n')
    environ = {
        "OTP_REDIS_URL": "redis://:hunter2@redis.internal:6380/2?health_check_interval=5",
        "OTP_PEPPER": "pepper-that-must-not-show-anywhere",
        "OTP_CONFIG_FILE": str(config),
        "OTP_SANDBOX_ECHO": "off",
        "OTP_HOST": "0.0.0.0",  # noqa: S104 - the banner must show a host one can reach
        "OTP_PORT": "9000",
    }
    text = banner(load_settings(environ), environ)
    assert "store:  Redis at redis://redis.internal:6380/2 (OTP_REDIS_URL)" in text
    assert "embedded" not in text
    assert "pepper: from OTP_PEPPER" in text
    assert "random" not in text
    assert f"API keys: those of the tenants in {config} (shop); not shown" in text
    assert "(from config)" not in text
    assert "SMS are not printed (OTP_SANDBOX_ECHO=off)" in text
    assert '-H "Authorization: Bearer $KEY"' in text
    assert "http://127.0.0.1:9000/otp/start" in text
    for secret in ("hunter2", "pepper-that-must-not-show", "health_check", digest):
        assert secret not in text


def test_a_key_from_otp_dev_api_key_is_named_not_printed() -> None:
    environ = {"OTP_DEV_API_KEY": "my-own-dev-key"}
    text = banner(load_settings(environ), environ)
    assert "API key: the value of OTP_DEV_API_KEY" in text
    assert "my-own-dev-key" not in text
    assert '-H "Authorization: Bearer $OTP_DEV_API_KEY"' in text


def test_a_real_provider_in_development_says_real_sms_are_sent() -> None:
    environ = {
        "OTP_PROVIDER": "flowstates",
        "OTP_FLOWSTATES_BASE_URL": "https://api.flowstates.example",
        "OTP_FLOWSTATES_API_KEY": "fs-secret-key",
    }
    text = banner(load_settings(environ), environ)
    assert "SMS:    Flowstates at https://api.flowstates.example: REAL SMS are sent" in text
    assert "/dev/inbox" not in text, "there is no sandbox to read"
    assert "fs-secret-key" not in text


def test_redis_locations_lose_their_credentials() -> None:
    assert redis_location("rediss://user:pw@h:6379/0") == "rediss://h:6379/0"
    assert (
        redis_location("redis+sentinel://:pw@s1:26379,s2:26379/mymaster/0?sentinel_password=x")
        == "redis+sentinel://s1:26379,s2:26379/mymaster/0"
    )
    assert redis_location("unix:///run/redis.sock") == "unix:///run/redis.sock"
