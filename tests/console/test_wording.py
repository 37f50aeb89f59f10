"""The console's words (no I/O): every situation support staff meet, said plainly, with what
to tell the user; masking; the overview's figures; the constants the Lua scripts share."""

from __future__ import annotations

import math
import re
from importlib import resources

import pytest

from otpservice.console import wording
from otpservice.console.wording import SmsContext, format_duration, sms_words, verification_words
from otpservice.domain.masking import mask_number
from otpservice.domain.stats import DELIVERY_BOUNDS_MS, quantile_ms, summarise
from otpservice.store import keys
from otpservice.usecases.ports import DeliveryEvent, FraudBlock
from otpservice.usecases.support import SmsView, VerificationDetails

T0 = 1_790_000_000_000


def event(status: str, at_s: float, **extra: str) -> DeliveryEvent:
    return DeliveryEvent(
        status=status, at_ms=T0 + int(at_s * 1000), send=1, provider="messageflow", **extra
    )


def sms(*events: DeliveryEvent) -> SmsView:
    return SmsView(send=1, events=events)


def pending(now_s: float = 5, *, latest: bool = True, status: str = "pending") -> SmsContext:
    return SmsContext(
        latest=latest, status=status, can_resend=status == "pending", now_ms=T0 + int(now_s * 1000)
    )


def test_a_delivered_sms_says_how_fast_and_that_the_code_is_on_the_phone() -> None:
    said = sms_words(
        sms(event("queued", 0), event("submitted", 0.3), event("delivered", 4)), pending()
    )
    assert said.tone == "ok"
    assert said.what == "Delivered 4 s after the request: the code reached the phone."
    assert "look for it" in said.tell


def test_an_undelivered_sms_names_the_operators_status_and_code_and_what_to_do() -> None:
    said = sms_words(
        sms(
            event("queued", 0), event("undelivered", 3, provider_status="UNDELIV", error_code="034")
        ),
        pending(),
    )
    assert said.tone == "bad"
    assert said.what == (
        "The operator could not deliver the SMS (UNDELIV, 034): the operator reports the phone"
        " unreachable."
    )
    assert said.tell == "Ask the user to check signal; a new code can be sent now."


@pytest.mark.parametrize(
    ("code", "words"),
    [("001", "does not know this number"), ("27", "switched off"), ("032", "memory is full"),
     ("13", "barred"), ("999", None), ("abc", None), ("١٢", None)],
)  # fmt: skip
def test_operator_error_codes_are_read_as_numbers_whatever_their_padding(
    code: str, words: str | None
) -> None:
    meaning = wording.error_meaning(code)
    if words is None:
        assert meaning is None
    else:
        assert meaning is not None
        assert words in meaning.meaning


def test_an_unknown_error_code_is_shown_as_it_came_with_general_advice() -> None:
    said = sms_words(
        sms(event("undelivered", 3, provider_status="UNDELIV", error_code="777")), pending()
    )
    assert "(UNDELIV, 777)" in said.what
    assert "check the phone is on and has signal" in said.tell


def test_expired_rejected_and_failed_each_say_why() -> None:
    expired = sms_words(
        sms(event("queued", 0), event("expired", 60, provider_status="EXPIRED")), pending(61)
    )
    assert "could not reach the phone before the message expired (EXPIRED)" in expired.what
    rejected = sms_words(
        sms(event("rejected", 1, provider_status="REJECTD", error_code="SANDBOX-REJECT")), pending()
    )
    assert "refused before it reached the phone (REJECTD, SANDBOX-REJECT)" in rejected.what
    assert "Check the number" in rejected.tell
    failed = sms_words(
        sms(event("queued", 0), event("failed", 600, provider_status="http 500")), pending(601)
    )
    assert "never accepted the SMS while the code was valid" in failed.what
    assert "technical team" in failed.tell


def test_no_report_after_minutes_says_the_operator_has_not_confirmed() -> None:
    said = sms_words(sms(event("queued", 0), event("submitted", 1)), pending(601))
    assert said.what == (
        "No delivery report after 10 minutes: the operator has not confirmed delivery."
    )
    waiting = sms_words(sms(event("queued", 0), event("submitted", 1)), pending(5))
    assert "waiting for the operator's delivery report" in waiting.what


def test_an_sms_never_handed_to_the_provider_is_for_the_technical_team() -> None:
    said = sms_words(sms(event("queued", 0)), pending(300))
    assert said.tone == "bad"
    assert "Still not handed to the SMS provider after 5 min" in said.what


def test_an_older_sms_or_a_finished_verification_changes_the_advice() -> None:
    undelivered = sms(event("undelivered", 3, provider_status="UNDELIV", error_code="034"))
    assert "newer SMS replaced this one" in sms_words(undelivered, pending(latest=False)).tell
    delivered = sms(event("queued", 0), event("delivered", 2))
    assert "Nothing to do" in sms_words(delivered, pending(status="approved")).tell
    assert "new login" in sms_words(delivered, pending(status="expired")).tell


def test_a_flag_of_the_fraud_guard_is_explained() -> None:
    flag = DeliveryEvent(
        status="flagged", at_ms=T0, send=1, detail="GB: 21 unverified sends today, budget 20"
    )
    assert "monitor mode" in wording.flag_words(flag)
    assert "GB: 21 unverified" in wording.flag_words(flag)


def details(status: str, **overrides: object) -> VerificationDetails:
    values: dict[str, object] = {
        "id": "x" * 42, "tenant": "acme", "to": "+•••••••••67", "region": "PL",
        "status": status, "created_ms": T0, "expires_ms": T0 + 600_000, "finished_ms": None,
        "attempts_used": 1, "max_attempts": 5, "wrong_checks": 0, "sends": 1, "max_sends": 5,
        "provider": "sandbox", "delivery_status": "delivered", "sms": (),
    }  # fmt: skip
    values.update(overrides)
    return VerificationDetails(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("status", "overrides", "said"),
    [
        ("approved", {"finished_ms": T0 + 12_000}, "Approved 12 s after the start"),
        ("canceled", {}, "Canceled by the application"),
        ("failed", {"wrong_checks": 5, "attempts_used": 5}, "maximum attempts reached"),
        ("expired", {}, "Expired at"),
        ("pending", {}, "Waiting for the user's code until"),
    ],
)
def test_every_verification_status_is_said_plainly(
    status: str, overrides: dict[str, object], said: str
) -> None:
    words = verification_words(details(status, **overrides), T0 + 1000)
    assert said in words.what
    assert words.tell


def test_a_fraud_block_says_what_is_refused_and_what_to_do() -> None:
    block = FraudBlock(
        key="p:+447700", rule="prefix_budget", figure=21, limit=20, window="day",
        until_ms=T0 + 3_600_000, at_ms=T0, level=0, country="GB",
    )  # fmt: skip
    words = wording.block_words(block)
    assert "+44 7700 (GB): 21 unverified sends today, budget 20" in words.what
    assert "safe list" in words.tell


@pytest.mark.parametrize(
    ("ms", "text"),
    [(50, "under 0.1 s"), (400, "0.4 s"), (4_000, "4 s"), (125_000, "2 min 5 s"),
     (120_000, "2 min"), (3_780_000, "1 h 3 min"), (-5, "under 0.1 s")],
)  # fmt: skip
def test_durations_read_like_speech(ms: int, text: str) -> None:
    assert format_duration(ms) == text


@pytest.mark.parametrize(
    ("e164", "masked"),
    [("+48601234567", "+•••••••••67"), ("+12", "+••"), ("+447700900123", "+••••••••••23"),
     ("+48 601-234-567", "+•••••••••67")],
)  # fmt: skip
def test_numbers_are_masked_but_for_their_last_two_digits(e164: str, masked: str) -> None:
    assert mask_number(e164) == masked
    assert len(re.findall(r"[0-9]", mask_number(e164))) <= 2


def test_quantiles_of_delivery_times_interpolate_inside_their_bucket() -> None:
    assert quantile_ms({}, 0.5) is None
    assert quantile_ms({"1000": 10}, 0.5) == 500
    assert quantile_ms({"1000": 5, "2000": 5}, 0.9) == pytest.approx(1800)
    assert quantile_ms({"1000": 1, "inf": 9}, 0.5) == math.inf


def test_a_window_sums_its_periods_into_rates_per_country() -> None:
    summary = summarise(
        T0,
        [
            (T0, {"started|PL": 2, "sent|PL": 3, "delivered|PL": 2, "undelivered|PL": 1,
                  "approved|PL": 2, "ps|UNDELIV 034": 1, "tt|2000": 2}),
            (T0 + 600_000, {"started|GB": 1, "sent|GB": 1, "rejected|GB": 1}),
        ],
    )  # fmt: skip
    assert (summary.sent, summary.delivered, summary.started, summary.approved) == (4, 2, 3, 2)
    assert summary.delivered_pct == 50
    assert summary.conversion_pct == pytest.approx(66.67, abs=0.01)
    assert [row.country for row in summary.countries] == ["PL", "GB"]
    assert summary.countries[1].not_delivered == 1
    assert summary.provider_statuses == (("UNDELIV 034", 1),)
    assert [p.sent for p in summary.points] == [3, 1]
    assert summary.median_ms == pytest.approx(1500)


def test_the_scripts_share_the_stats_constants_with_python() -> None:
    prelude = (resources.files("otpservice.store") / "lua" / "_prelude.lua").read_text()
    ttl = re.search(r"local STATS_SLOT_TTL_MS, STATS_HOUR_TTL_MS = (\d+), (\d+)", prelude)
    assert ttl
    assert (int(ttl.group(1)), int(ttl.group(2))) == (
        keys.STATS_SLOT_TTL_MS,
        keys.STATS_HOUR_TTL_MS,
    )
    bounds = re.search(r"local DELIVERY_BOUNDS_MS = \{([\d, ]+)\}", prelude)
    assert bounds
    assert tuple(int(b) for b in bounds.group(1).split(",")) == DELIVERY_BOUNDS_MS
    # The console reads every period it shows before its hash expires.
    assert keys.STATS_SLOT_TTL_MS >= keys.STATS_SLOTS_READ * keys.STATS_SLOT_MS
    assert keys.STATS_HOUR_TTL_MS >= keys.STATS_HOURS_READ * keys.STATS_HOUR_MS
