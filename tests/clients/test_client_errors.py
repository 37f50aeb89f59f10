"""Every problem `code` of the service arrives as its own exception class, with its status,
detail and Retry-After; unknown codes and non-problem answers still arrive as OtpServiceError.
No exception ever shows the code the user typed."""

from __future__ import annotations

import email.utils
import time

import httpx
import pytest
from otpservice_client import (
    Client,
    DestinationNotAllowed,
    FraudSuspected,
    IdempotencyConflict,
    InvalidCodeFormat,
    InvalidPhoneNumber,
    InvalidRequest,
    MaxSendsReached,
    OtpServiceError,
    Overloaded,
    PayloadTooLarge,
    RateLimited,
    ResendTooSoon,
    ServiceUnavailable,
    TooManyRequests,
    TransportError,
    Unauthorized,
    UnexpectedResponse,
    UnsupportedMediaType,
    VerificationNotFound,
)
from otpservice_client.errors import parse_retry_after

from tests.clients.fakes import VERIFICATION_ID, Script, problem

BASE_URL = "http://otp.test"

PROBLEMS = [
    (400, "invalid_request", InvalidRequest),
    (400, "invalid_phone_number", InvalidPhoneNumber),
    (400, "invalid_code_format", InvalidCodeFormat),
    (401, "unauthorized", Unauthorized),
    (403, "destination_not_allowed", DestinationNotAllowed),
    (404, "verification_not_found", VerificationNotFound),
    (409, "idempotency_conflict", IdempotencyConflict),
    (413, "payload_too_large", PayloadTooLarge),
    (415, "unsupported_media_type", UnsupportedMediaType),
    (429, "rate_limited", RateLimited),
    (429, "resend_too_soon", ResendTooSoon),
    (429, "max_sends_reached", MaxSendsReached),
    (429, "fraud_suspected", FraudSuspected),
    (503, "service_unavailable", ServiceUnavailable),
    (503, "overloaded", Overloaded),
]


def client_for(script: Script) -> Client:
    # No retries: each test sees the first answer's error.
    return Client(BASE_URL, "key", transport=script.transport, max_retries=0)


@pytest.mark.parametrize(("status", "code", "error_class"), PROBLEMS)
def test_each_problem_code_raises_its_own_class(status, code, error_class) -> None:
    retry_after = 7 if status in {429, 503} else None
    script = Script(problem(status, code, retry_after=retry_after, detail="what happened"))
    with client_for(script) as otp, pytest.raises(error_class) as caught:
        otp.get(VERIFICATION_ID)
    error = caught.value
    assert type(error) is error_class
    assert isinstance(error, OtpServiceError)
    assert (error.status, error.code, error.detail) == (status, code, "what happened")
    assert error.retry_after == retry_after
    assert code in str(error)
    assert "what happened" in str(error)


def test_the_throttling_errors_share_a_class_that_carries_retry_after() -> None:
    for _, code, error_class in PROBLEMS:
        assert issubclass(error_class, TooManyRequests) == (
            code in {"rate_limited", "resend_too_soon", "max_sends_reached", "fraud_suspected"}
        )
    assert issubclass(InvalidPhoneNumber, InvalidRequest)
    assert issubclass(InvalidCodeFormat, InvalidRequest)


def test_an_unknown_429_code_is_still_a_too_many_requests_with_its_retry_after() -> None:
    script = Script(problem(429, "brand_new_limit", retry_after=12))
    with client_for(script) as otp, pytest.raises(TooManyRequests) as caught:
        otp.resend(VERIFICATION_ID)
    assert type(caught.value) is TooManyRequests
    assert (caught.value.status, caught.value.code, caught.value.retry_after) == (
        429,
        "brand_new_limit",
        12,
    )


@pytest.mark.parametrize("status", [400, 404, 418, 500])
def test_an_unknown_code_maps_to_the_base_class_with_its_status(status) -> None:
    script = Script(problem(status, "brand_new_code"))
    with client_for(script) as otp, pytest.raises(OtpServiceError) as caught:
        otp.cancel(VERIFICATION_ID)
    assert type(caught.value) is OtpServiceError
    assert (caught.value.status, caught.value.code) == (status, "brand_new_code")


def test_a_known_code_with_another_status_is_not_trusted_as_that_class() -> None:
    # A proxy or a misrouted request: a 404 "not_found" from the router is not a verification
    # that does not exist, and a code whose status disagrees is not taken at its word.
    script = Script(problem(404, "not_found"), problem(400, "verification_not_found"))
    with client_for(script) as otp:
        for _ in range(2):
            with pytest.raises(OtpServiceError) as caught:
                otp.get(VERIFICATION_ID)
            assert type(caught.value) is OtpServiceError


def test_an_answer_that_is_not_a_problem_document_still_raises_with_its_status() -> None:
    script = Script(httpx.Response(502, text="<html>Bad gateway</html>"))
    with client_for(script) as otp, pytest.raises(OtpServiceError) as caught:
        otp.get(VERIFICATION_ID)
    assert type(caught.value) is OtpServiceError
    assert (caught.value.status, caught.value.code, caught.value.retry_after) == (502, "", None)


def test_a_success_whose_body_is_not_the_model_raises_unexpected_response() -> None:
    script = Script(httpx.Response(200, json={"id": VERIFICATION_ID}))
    with client_for(script) as otp, pytest.raises(UnexpectedResponse) as caught:
        otp.get(VERIFICATION_ID)
    assert caught.value.status == 200
    assert "Verification" in caught.value.detail


def test_no_answer_at_all_raises_a_transport_error_caused_by_httpx_s() -> None:
    script = Script(httpx.ReadTimeout("timed out"))
    with client_for(script) as otp, pytest.raises(TransportError) as caught:
        otp.resend(VERIFICATION_ID)
    assert isinstance(caught.value, OtpServiceError)
    assert (caught.value.status, caught.value.code) == (0, "transport_error")
    assert isinstance(caught.value.__cause__, httpx.ReadTimeout)


def test_the_code_the_user_typed_appears_in_no_error() -> None:
    secret_code = "918273"
    script = Script(
        problem(400, "invalid_code_format", detail="The code must be exactly 6 digits."),
        httpx.ReadTimeout("timed out"),
    )
    with client_for(script) as otp:
        errors: list[BaseException] = []
        for kwargs in (
            {"id": VERIFICATION_ID},
            {"id": VERIFICATION_ID},
            {},
            {"id": "x", "to": "+48"},
        ):
            try:
                otp.verify(secret_code, **kwargs)
            except (OtpServiceError, ValueError) as exc:
                errors.append(exc)
    assert [type(e) for e in errors] == [InvalidCodeFormat, TransportError, ValueError, ValueError]
    for error in errors:
        shown = f"{error!s} {error!r} {error.args!r} {error.__cause__!r}"
        assert secret_code not in shown


def test_retry_after_is_read_as_seconds_or_as_an_http_date() -> None:
    now = time.time()
    assert parse_retry_after("30") == 30
    assert parse_retry_after(email.utils.formatdate(now + 90, usegmt=True), now=now) in {89, 90}
    assert parse_retry_after(email.utils.formatdate(now - 90, usegmt=True), now=now) == 0
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    assert parse_retry_after("-5") is None
