"""The client's models, parameters and error classes say what the service's OpenAPI document
says: when the service adds a field, a status or an error code, this fails until the client
follows. The document is built in-process, as the server serves it."""

from __future__ import annotations

import inspect
import typing
from typing import Any

import msgspec
import pytest
from litestar.testing import TestClient
from otpservice_client import CheckResult, Client, Delivery, DeliveryEvent, Signals, Verification
from otpservice_client.errors import PROBLEM_CLASSES

from otpservice.app import create_app
from otpservice.settings import load_settings

ROUTER_CODES = {"not_found", "method_not_allowed", "internal_error"}
"""Codes the router answers (no such route, a wrong method, a bug): no class of their own."""
NOT_YET_IN_THE_DOCUMENT = {"fraud_suspected"}
"""Codes the contract announces (December 2026) before the service answers them."""
CLIENT_ONLY_FIELDS = {"replayed"}
"""From the Idempotent-Replayed header, not the body."""


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    settings = load_settings(
        {"OTP_DEV_API_KEY": "k" * 32, "OTP_ARGON2_PROFILE": "test", "OTP_SANDBOX_ECHO": "false"}
    )
    with TestClient(create_app(settings)) as client:
        response = client.get("/schema/openapi.json")
        response.raise_for_status()
        return typing.cast("dict[str, Any]", response.json())


def fields(struct: type[msgspec.Struct]) -> set[str]:
    return {f.name for f in msgspec.structs.fields(struct)} - CLIENT_ONLY_FIELDS


def literal_values(struct: type[msgspec.Struct], name: str) -> set[str]:
    hint = typing.get_type_hints(struct)[name]
    return set(typing.get_args(hint))


@pytest.mark.parametrize(
    ("model", "schema"),
    [
        (Verification, "Verification"),
        (Delivery, "DeliveryOut"),
        (DeliveryEvent, "DeliveryEventOut"),
        (CheckResult, "CheckResult"),
        (Signals, "Signals"),
    ],
)
def test_each_model_has_the_fields_of_its_schema(document, model, schema) -> None:
    assert fields(model) == set(document["components"]["schemas"][schema]["properties"])


@pytest.mark.parametrize(
    ("model", "field", "schema"),
    [
        (Verification, "status", "Verification"),
        (Verification, "channel", "Verification"),
        (Delivery, "status", "DeliveryOut"),
        (DeliveryEvent, "status", "DeliveryEventOut"),
        (CheckResult, "status", "CheckResult"),
    ],
)
def test_each_status_lists_the_values_of_its_schema(document, model, field, schema) -> None:
    prop = document["components"]["schemas"][schema]["properties"][field]
    expected = set(prop["enum"]) if "enum" in prop else {prop["const"]}
    assert literal_values(model, field) == expected


def test_the_nullable_timestamps_and_fields_are_optional_in_the_models(document) -> None:
    hints = typing.get_type_hints(Verification)
    schema = document["components"]["schemas"]["Verification"]["properties"]
    for name, prop in schema.items():
        nullable = any(branch.get("type") == "null" for branch in prop.get("oneOf", []))
        assert (type(None) in typing.get_args(hints[name])) == nullable, name


def test_start_takes_every_field_of_the_start_request(document) -> None:
    body = set(document["components"]["schemas"]["StartRequest"]["properties"])
    header = {
        p["name"]
        for p in document["paths"]["/otp/start"]["post"]["parameters"]
        if p["in"] == "header"
    }
    assert header == {"Idempotency-Key"}
    parameters = set(inspect.signature(Client.start).parameters) - {"self"}
    assert parameters == body | {"idempotency_key"}


def test_verify_takes_every_field_of_the_verify_request(document) -> None:
    schemas = document["components"]["schemas"]
    body = set(schemas["VerifyById"]["properties"]) | set(schemas["VerifyByNumber"]["properties"])
    assert set(inspect.signature(Client.verify).parameters) - {"self"} == body


def test_every_problem_code_of_the_document_has_its_class_with_its_status(document) -> None:
    statuses: dict[str, set[int]] = {}
    for methods in document["paths"].values():
        for operation in methods.values():
            for status, response in operation.get("responses", {}).items():
                content = response.get("content", {}).get("application/problem+json")
                if content is None:
                    continue
                for narrowing in content["schema"].get("allOf", [])[1:]:
                    for code in narrowing["properties"]["code"]["enum"]:
                        statuses.setdefault(code, set()).add(int(status))
    listed = set(document["components"]["schemas"]["Problem"]["properties"]["code"]["enum"])
    assert set(statuses) <= listed
    assert set(PROBLEM_CLASSES) == (listed - ROUTER_CODES) | NOT_YET_IN_THE_DOCUMENT
    for code, found in statuses.items():
        if code in PROBLEM_CLASSES:
            assert found == {PROBLEM_CLASSES[code].default_status}, code


def test_the_throttling_and_unavailable_answers_carry_retry_after(document) -> None:
    # The client's retries and `retry_after` rely on it.
    for methods in document["paths"].values():
        for operation in methods.values():
            for status in ("429", "503"):
                response = operation.get("responses", {}).get(status)
                if response is not None:
                    assert "Retry-After" in response.get("headers", {})
    start = document["paths"]["/otp/start"]["post"]["responses"]["201"]
    assert "Idempotent-Replayed" in start["headers"]
