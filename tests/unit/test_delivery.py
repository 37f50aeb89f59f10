"""Delivery status rules: reading provider reports and the first-terminal-wins ordering."""

from __future__ import annotations

from functools import reduce
from itertools import pairwise

import pytest
from hypothesis import given
from hypothesis import strategies as st

from otpservice.domain.delivery import (
    RESEND_UNLOCKING,
    TERMINAL,
    DeliveryStatus,
    is_terminal,
    next_status,
    normalize_provider_status,
)

S = DeliveryStatus
INTERMEDIATE = [S.QUEUED, S.SUBMITTED]

statuses = st.sampled_from(list(DeliveryStatus))
reports = st.lists(statuses, max_size=30)


def apply_reports(reported: list[DeliveryStatus], start: DeliveryStatus = S.QUEUED) -> list[S]:
    """Every status the delivery passes through, starting with `start`."""
    history = [start]
    for report in reported:
        history.append(next_status(history[-1], report))
    return history


# --- reading provider reports -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Delivered", S.DELIVERED),
        ("delivered", S.DELIVERED),
        ("DELIVRD", S.DELIVERED),
        ("deliver", S.DELIVERED),
        ("success", S.DELIVERED),
        ("sent-to-handset", S.DELIVERED),
        ("Sent to handset", S.DELIVERED),
        ("SENT_TO_HANDSET", S.DELIVERED),
        ("Undelivered", S.UNDELIVERED),
        ("UNDELIV", S.UNDELIVERED),
        ("undeliverable", S.UNDELIVERED),
        ("failed-delivery", S.UNDELIVERED),
        ("not delivered", S.UNDELIVERED),
        ("failed", S.UNDELIVERED),
        ("DELETED", S.UNDELIVERED),
        ("Expired", S.EXPIRED),
        ("EXPIRED", S.EXPIRED),
        ("rejected", S.REJECTED),
        ("REJECTD", S.REJECTED),
        ("ACCEPTD", S.SUBMITTED),
        ("accepted", S.SUBMITTED),
        ("ENROUTE", S.SUBMITTED),
        ("buffered", S.SUBMITTED),
        ("sent", S.SUBMITTED),
        ("submitted", S.SUBMITTED),
        ("pending", S.SUBMITTED),
        ("queued", S.SUBMITTED),
        ("queued_at_smsc", S.SUBMITTED),
        ("  delivered \n", S.DELIVERED),
        ("UNKNOWN", S.UNKNOWN),
    ],
)
def test_provider_status_words_are_read_in_any_case(raw: str, expected: DeliveryStatus) -> None:
    assert normalize_provider_status(raw) is expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (1, S.DELIVERED),
        (2, S.UNDELIVERED),
        (4, S.SUBMITTED),
        (8, S.SUBMITTED),
        (16, S.REJECTED),
        ("1", S.DELIVERED),
        (" 16 ", S.REJECTED),
        ("08", S.SUBMITTED),
    ],
)
def test_kannel_dlr_codes_are_read_as_numbers_or_strings(
    raw: str | int, expected: DeliveryStatus
) -> None:
    assert normalize_provider_status(raw) is expected


@pytest.mark.parametrize(
    "raw",
    [None, "", "   ", "banana", "deliveredX", 0, 3, 32, -1, "3", "1.0", "\uff11", True, "9" * 5000],
)
def test_anything_unreadable_is_unknown(raw: object) -> None:
    assert normalize_provider_status(raw) is S.UNKNOWN  # type: ignore[arg-type]


@given(st.one_of(st.none(), st.text(), st.integers()))
def test_reading_a_report_never_raises(raw: str | int | None) -> None:
    assert normalize_provider_status(raw) in set(DeliveryStatus)


# --- the status ordering ------------------------------------------------------------------------


def test_a_delivery_moves_from_queued_through_submitted_to_delivered() -> None:
    assert apply_reports([S.SUBMITTED, S.DELIVERED]) == [S.QUEUED, S.SUBMITTED, S.DELIVERED]


def test_a_terminal_report_may_arrive_before_the_submitted_one() -> None:
    assert apply_reports([S.DELIVERED, S.SUBMITTED])[-1] is S.DELIVERED


def test_submitted_never_falls_back_to_queued() -> None:
    assert next_status(S.SUBMITTED, S.QUEUED) is S.SUBMITTED


def test_a_late_undelivered_report_does_not_undo_delivered() -> None:
    assert next_status(S.DELIVERED, S.UNDELIVERED) is S.DELIVERED


@pytest.mark.parametrize("current", list(DeliveryStatus))
def test_an_unknown_report_moves_nothing(current: DeliveryStatus) -> None:
    assert next_status(current, S.UNKNOWN) is current


def test_the_terminal_statuses_are_the_contracts_five() -> None:
    assert {s.value for s in TERMINAL} == {
        "delivered",
        "undelivered",
        "expired",
        "rejected",
        "failed",
    }
    assert all(is_terminal(s) for s in TERMINAL)
    assert not any(is_terminal(s) for s in (S.QUEUED, S.SUBMITTED, S.UNKNOWN))


def test_only_failed_deliveries_lift_the_resend_cooldown() -> None:
    assert {S.UNDELIVERED, S.EXPIRED, S.REJECTED, S.FAILED} == RESEND_UNLOCKING
    assert S.DELIVERED not in RESEND_UNLOCKING


@given(reports)
def test_once_terminal_the_status_never_changes(reported: list[DeliveryStatus]) -> None:
    history = apply_reports(reported)

    for before, after in pairwise(history):
        if is_terminal(before):
            assert after is before


@given(reports)
def test_the_first_terminal_report_is_the_final_status(reported: list[DeliveryStatus]) -> None:
    final = apply_reports(reported)[-1]

    terminals = [s for s in reported if is_terminal(s)]
    if terminals:
        assert final is terminals[0]
    elif S.SUBMITTED in reported:
        assert final is S.SUBMITTED
    else:
        assert final is S.QUEUED


@given(reports)
def test_repeated_reports_change_nothing(reported: list[DeliveryStatus]) -> None:
    doubled = [s for s in reported for _ in range(2)]

    assert apply_reports(doubled)[-1] is apply_reports(reported)[-1]


@given(st.sampled_from(sorted(TERMINAL)), st.lists(st.sampled_from([*INTERMEDIATE, S.UNKNOWN])))
def test_intermediate_reports_never_overwrite_a_terminal_status(
    terminal: DeliveryStatus, later: list[DeliveryStatus]
) -> None:
    assert reduce(next_status, later, terminal) is terminal
