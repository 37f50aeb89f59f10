"""Reading delivery-report webhook bodies: every shape providers post, and what is no report."""

from __future__ import annotations

import json

import pytest

from otpservice.providers.dlr import InvalidReport, RawReport, parse_reports

JSON = "application/json"
FORM = "application/x-www-form-urlencoded"


def body(value: object) -> bytes:
    return json.dumps(value).encode()


def test_a_single_messageflow_report_is_read_with_every_field() -> None:
    report = {
        "externalId": "ext-1",
        "status": "Delivered",
        "errorCode": "000",
        "timestamp": "2026-11-23T10:00:05Z",
    }

    assert parse_reports(body(report), provider="messageflow", content_type=JSON) == [
        RawReport(
            message_ref="ext-1",
            raw_status="Delivered",
            error_code="000",
            occurred_at="2026-11-23T10:00:05Z",
        )
    ]


def test_a_list_of_reports_keeps_their_order() -> None:
    reports = [{"externalId": "a", "status": "Delivered"}, {"externalId": "b", "stat": "UNDELIV"}]

    parsed = parse_reports(body(reports), provider="messageflow", content_type=JSON)

    assert [(r.message_ref, r.raw_status) for r in parsed] == [("a", "Delivered"), ("b", "UNDELIV")]


@pytest.mark.parametrize(
    "wrapped",
    [
        {"data": [{"messageId": "fs-1", "state": "delivered"}]},
        {"data": {"messageId": "fs-1", "state": "delivered"}},
    ],
)
def test_reports_wrapped_in_data_are_unwrapped(wrapped: object) -> None:
    parsed = parse_reports(body(wrapped), provider="flowstates", content_type=JSON)

    assert parsed == [RawReport(message_ref="fs-1", raw_status="delivered")]


def test_a_form_encoded_report_is_read() -> None:
    form = b"msgId=fs-9&stat=DELIVRD&err=000&done_date=2611231000&extra=x"

    assert parse_reports(form, provider="flowstates", content_type=f"{FORM}; charset=utf-8") == [
        RawReport(
            message_ref="fs-9", raw_status="DELIVRD", error_code="000", occurred_at="2611231000"
        )
    ]


def test_a_form_report_is_recognised_without_a_content_type() -> None:
    parsed = parse_reports(b"external_id=ext-2&status=Expired", provider="messageflow")

    assert parsed == [RawReport(message_ref="ext-2", raw_status="Expired")]


def test_a_json_report_posted_as_text_plain_is_still_read() -> None:
    parsed = parse_reports(
        body({"externalId": "e"}), provider="messageflow", content_type="text/plain"
    )

    assert parsed == [RawReport(message_ref="e")]


@pytest.mark.parametrize(("raw", "text"), [(2, "2"), (1.0, "1"), (16, "16"), (2.5, "2.5")])
def test_a_numeric_status_is_passed_on_as_text(raw: object, text: str) -> None:
    parsed = parse_reports(body({"id": 77, "statusCode": raw}), provider="flowstates")

    assert parsed == [RawReport(message_ref="77", raw_status=text)]


def test_missing_optional_fields_are_none() -> None:
    parsed = parse_reports(body({"externalId": "ext-1"}), provider="messageflow")

    assert parsed == [RawReport(message_ref="ext-1")]
    assert (parsed[0].raw_status, parsed[0].error_code, parsed[0].occurred_at) == (None, None, None)


def test_fields_of_the_wrong_type_are_treated_as_missing() -> None:
    report = {"externalId": "e", "status": {"nested": 1}, "errorCode": True, "timestamp": None}

    assert parse_reports(body(report), provider="messageflow") == [RawReport(message_ref="e")]


def test_the_first_present_key_wins_and_blank_values_do_not_count() -> None:
    report = {"externalId": "", "external_id": "ext-7", "status": "", "stat": "DELIVRD"}

    assert parse_reports(body(report), provider="messageflow") == [
        RawReport(message_ref="ext-7", raw_status="DELIVRD")
    ]


def test_keys_are_matched_whatever_their_case() -> None:
    report = {"ExternalId": "ext-1", "Status": "DELIVERED", "ErrorCode": "0"}

    assert parse_reports(body(report), provider="messageflow") == [
        RawReport(message_ref="ext-1", raw_status="DELIVERED", error_code="0")
    ]


def test_messageflow_reports_match_on_the_external_id_we_sent() -> None:
    report = {"id": "mf-internal-5", "externalId": "ext-1", "status": "Delivered"}

    assert parse_reports(body(report), provider="messageflow")[0].message_ref == "ext-1"


def test_flowstates_reports_match_on_their_own_message_id() -> None:
    report = {"id": "event-3", "messageId": "fs-1", "status": "delivered"}

    assert parse_reports(body(report), provider="flowstates")[0].message_ref == "fs-1"


@pytest.mark.parametrize(
    ("content", "content_type"),
    [
        (b"", JSON),
        (b"not json", JSON),
        (b"{broken", None),
        (b"\xff\xfe", FORM),
        (b"[]", JSON),
        (b'{"data": []}', JSON),
        (b"null", JSON),
        (b'"ext-1"', JSON),
        (b"42", JSON),
        (b"[1, 2]", JSON),
        (b'["ext-1"]', JSON),
        (b'[{"externalId": "a"}, "b"]', JSON),
        (b'{"status": "Delivered"}', JSON),
        (b'[{"externalId": "a"}, {"status": "Delivered"}]', JSON),
        (b'{"externalId": {"id": "a"}}', JSON),
        (b'{"data": {"data": [{"externalId": "a"}]}}', JSON),
        (b'[[{"externalId": "a"}]]', JSON),
        (b"[" * 5000 + b"]" * 5000, JSON),
        (b"status=DELIVRD", FORM),
        (b"", FORM),
        (b"", None),
    ],
)
def test_a_body_that_is_not_a_report_is_invalid(content: bytes, content_type: str | None) -> None:
    with pytest.raises(InvalidReport):
        parse_reports(content, provider="messageflow", content_type=content_type)


def test_invalid_report_is_a_value_error() -> None:
    assert issubclass(InvalidReport, ValueError)
