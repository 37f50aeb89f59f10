"""Schema-driven fuzzing of every route (schemathesis): inputs drawn from the OpenAPI document,
valid and invalid, sent to the service on a real port with a valid API key. No input may give a
5xx (the attacker's run once found a 500 in 2 KB of brackets), and every answer must be one the
document lists, with its content type and schema: the document and the server agree.

The example count is bounded (Hypothesis settings below), so the whole run takes seconds. A
start that the fuzzer makes valid sends an SMS through the sandbox, which is discarded.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from litestar._openapi.plugin import OpenAPIPlugin
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from otpservice.app import create_app
from otpservice.providers.sandbox import SandboxGateway
from otpservice.settings import load_settings
from tests.integration.conftest import API_KEY, PEPPER, tenant_toml
from tests.support.asgi import ThreadedServer
from tests.support.ports import free_port

WEBHOOK_SECRET = "fuzz-webhook-secret"


def _settings(redis_url: str, config: Path) -> Any:
    config.write_text(
        tenant_toml(
            "acme",
            API_KEY,
            {"limits": {"starts_per_ip_per_minute": 1_000_000, "sends_per_number_per_hour": 1000,
                        "sends_per_number_per_day": 1000}},
        )
    )  # fmt: skip
    return load_settings(
        {
            "OTP_ENV": "development",
            "OTP_REDIS_URL": redis_url,
            "OTP_PEPPER": "base64:" + PEPPER,
            "OTP_ARGON2_PROFILE": "test",
            "OTP_CONFIG_FILE": str(config),
            "OTP_SANDBOX_ECHO": "false",
            "OTP_MESSAGEFLOW_WEBHOOK_SECRET": WEBHOOK_SECRET,
        }
    )


def _document() -> dict[str, Any]:
    """The document as the service serves it (it needs no Redis to be built)."""
    app = create_app(load_settings({"OTP_DEV_API_KEY": "k", "OTP_SANDBOX_ECHO": "false"}))
    document: dict[str, Any] = app.plugins.get(OpenAPIPlugin).provide_openapi_schema()
    return document


schema = schemathesis.openapi.from_dict(_document())


@pytest.fixture(scope="module")
def service(redis_server: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    settings_ = _settings(redis_server.url, tmp_path_factory.mktemp("fuzz") / "otp.toml")
    port = free_port()
    with ThreadedServer(create_app(settings_, gateway=SandboxGateway(echo=False)), port):
        yield f"http://127.0.0.1:{port}"


def _auth(case: Any) -> dict[str, str]:
    if case.path.startswith("/webhooks/"):
        secret = base64.b64encode(f"provider:{WEBHOOK_SECRET}".encode()).decode()
        return {"Authorization": f"Basic {secret}"}
    return {"Authorization": f"Bearer {API_KEY}"}


@schema.parametrize()
@settings(
    max_examples=40,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_no_input_gets_a_5xx_and_every_answer_is_documented(service: str, case: Any) -> None:
    headers = {**(case.headers or {}), **_auth(case)}
    response = case.call(base_url=service, headers=headers)
    # A 503 is legitimate (overloaded, or the store away) and documented; a 500 never is.
    case.validate_response(
        response,
        checks=[
            not_a_server_error,
            status_code_conformance,
            content_type_conformance,
            response_schema_conformance,
        ],
    )
    assert response.status_code < 500 or response.status_code == 503, response.text
