"""The OpenAPI document says what the server enforces: patterns, "exactly one of", enums,
formats, every error with its problem codes and headers, and the webhooks' bodies."""

from __future__ import annotations

import re
from typing import Any

import jsonschema
import pytest

from tests.integration.conftest import Harness

OPERATIONS = {
    ("/otp/start", "post"): "startVerification",
    ("/otp/verify", "post"): "checkCode",
    ("/otp/{verification_id}/resend", "post"): "resendCode",
    ("/otp/{verification_id}/cancel", "post"): "cancelVerification",
    ("/otp/{verification_id}", "get"): "getVerification",
    ("/webhooks/{provider}", "post"): "receiveDeliveryReports",
    ("/healthz", "get"): "getHealth",
    ("/readyz", "get"): "getReadiness",
    ("/metrics", "get"): "getMetrics",
    ("/fraud/blocks", "get"): "listFraudBlocks",
    ("/fraud/blocks/{block_id}", "delete"): "liftFraudBlock",
    ("/fraud/safe-list", "get"): "getFraudSafeList",
    ("/fraud/safe-list/{entry}", "put"): "addToFraudSafeList",
    ("/fraud/safe-list/{entry}", "delete"): "removeFromFraudSafeList",
    ("/dev/inbox", "get"): "getDevInbox",
}


@pytest.fixture
async def document(harness: Harness) -> dict[str, Any]:
    answer = await harness.client.get("/schema/openapi.json")
    assert answer.status_code == 200
    found: dict[str, Any] = answer.json()
    return found


def schema_of(document: dict[str, Any], name: str) -> dict[str, Any]:
    """A component schema with its $refs resolved against the document (for jsonschema)."""
    return {**document["components"]["schemas"][name], "components": document["components"]}


def test_every_operation_has_a_readable_id(document: dict[str, Any]) -> None:
    found = {
        (path, method): operation.get("operationId")
        for path, methods in document["paths"].items()
        for method, operation in methods.items()
    }
    assert found == OPERATIONS


@pytest.mark.parametrize(
    ("number", "accepted"),
    [
        ("+48601234567", True),
        ("+48 601-234-567", True),
        ("+48 (601) 234 567", True),
        (" +48601234567", False),
        ("+48601234567 ", False),
        ("+48601234567\n", False),
        ("48601234567", False),
        ("+48601234567x", False),
    ],
)
async def test_the_number_pattern_is_what_the_server_takes(
    harness: Harness, document: dict[str, Any], number: str, accepted: bool
) -> None:
    pattern = document["components"]["schemas"]["StartRequest"]["properties"]["to"]["pattern"]
    # JSON Schema patterns are ECMA regexes, where `$` does not match before a final newline.
    assert (re.fullmatch(pattern.strip("^$"), number) is not None) is accepted
    answer = await harness.start(number)
    assert (answer.status_code == 201) is accepted, answer.text
    if not accepted:
        assert answer.json()["code"] == "invalid_phone_number"


def test_exactly_one_of_id_and_to_is_in_the_verify_schema(document: dict[str, Any]) -> None:
    schema = schema_of(document, "VerifyRequest")
    valid = [{"id": "x", "code": "123456"}, {"to": "+48601234567", "code": "123456"}]
    invalid = [{"code": "123456"}, {"id": "x", "to": "+48601234567", "code": "123456"}]
    for body in valid:
        jsonschema.validate(body, schema)
    for body in invalid:
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(body, schema)


def test_every_error_names_its_codes_and_429_and_503_their_retry_after(
    document: dict[str, Any],
) -> None:
    problem = document["components"]["schemas"]["Problem"]
    all_codes = set(problem["properties"]["code"]["enum"])
    assert "examples" not in problem  # no invented examples: each response has real ones
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            for status, response in operation["responses"].items():
                if int(status) < 400:
                    continue
                where = f"{method.upper()} {path} {status}"
                content = response["content"]["application/problem+json"]
                narrowed = content["schema"]["allOf"][1]["properties"]
                codes = narrowed["code"]["enum"]
                assert codes, where
                assert set(codes) <= all_codes, where
                assert narrowed["status"]["enum"] == [int(status)], where
                examples = [e["value"] for e in content["examples"].values()]
                assert sorted(e["code"] for e in examples) == sorted(codes), where
                assert all(e["status"] == int(status) for e in examples), where
                assert all(e["type"].endswith(e["code"]) for e in examples), where
                headers = response.get("headers", {})
                assert ("Retry-After" in headers) is (status in {"429", "503"}), where


def test_the_start_documents_its_idempotency_headers(document: dict[str, Any]) -> None:
    start = document["paths"]["/otp/start"]["post"]
    assert any(p["name"] == "Idempotency-Key" for p in start["parameters"])
    assert start["responses"]["201"]["headers"]["Idempotent-Replayed"]["schema"]["enum"] == ["true"]


def test_statuses_are_enums_and_times_are_date_times(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    verification = schemas["Verification"]["properties"]
    assert set(verification["status"]["enum"]) == {
        "pending", "approved", "failed", "canceled", "expired",
    }  # fmt: skip
    assert verification["created_at"]["format"] == "date-time"
    delivery = schemas["DeliveryOut"]["properties"]
    assert "unknown" not in delivery["status"]["enum"]
    assert "unknown" in schemas["DeliveryEventOut"]["properties"]["status"]["enum"]
    assert set(schemas["CheckResult"]["properties"]["status"]["enum"]) == {
        "approved", "pending", "failed",
    }  # fmt: skip


def test_the_delivery_report_webhook_documents_its_body(document: dict[str, Any]) -> None:
    body = document["paths"]["/webhooks/{provider}"]["post"]["requestBody"]
    assert set(body["content"]) == {"application/json", "application/x-www-form-urlencoded"}
    report = schema_of(document, "DeliveryReport")
    jsonschema.validate({"externalId": "x-1", "status": "DELIVRD", "errorCode": "000"}, report)


async def test_the_api_reference_page_is_served(harness: Harness) -> None:
    page = await harness.client.get("/schema")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "openapi.json" in page.text or "otpservice" in page.text
