"""What each situation means in plain words, and what support staff should tell the user.
Every sentence the console says about a verification or an SMS is made here, from the data the
use cases give (usecases/support.py); nothing here does I/O.

Operators' error codes differ between providers; those below are the GSM MAP errors most
providers pass on (often zero-padded: "034"). An unknown code is shown as it came.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

import msgspec

from otpservice.domain.delivery import TERMINAL, DeliveryStatus
from otpservice.usecases.fraud import describe_block
from otpservice.usecases.ports import DeliveryEvent, FraudBlock
from otpservice.usecases.support import SmsView, VerificationDetails

Tone = Literal["ok", "info", "warn", "bad"]

NO_REPORT_AFTER_MS = 2 * 60_000
"""A submitted SMS without a delivery report after this long is worth saying so: most reports
come within seconds."""
SLOW_QUEUE_MS = 60_000


class Words(msgspec.Struct, frozen=True, kw_only=True):
    tone: Tone
    what: str
    """What happened, in plain words."""
    tell: str
    """What to tell the user (or do)."""


class ErrorMeaning(msgspec.Struct, frozen=True, kw_only=True):
    meaning: str
    advice: str


ERROR_CODES: dict[int, ErrorMeaning] = {
    1: ErrorMeaning(
        meaning="the operator does not know this number (not in service or ported away)",
        advice="Check the number with the user, digit by digit and with its country code",
    ),
    5: ErrorMeaning(
        meaning="the operator could not identify the subscriber",
        advice="Check the number with the user; if it is right, their operator should help",
    ),
    6: ErrorMeaning(
        meaning="the phone is switched off or out of coverage",
        advice="Ask the user to switch the phone on and check it has signal",
    ),
    9: ErrorMeaning(
        meaning="the operator refuses this subscriber (a blocked or unpaid line)",
        advice="Ask the user to check with their operator that the line is active",
    ),
    11: ErrorMeaning(
        meaning="the line cannot receive text messages (SMS not provisioned)",
        advice="Ask the user whether this number receives SMS at all (data-only SIMs do not)",
    ),
    12: ErrorMeaning(
        meaning="the phone was refused by the network (illegal equipment)",
        advice="Ask the user to restart the phone or try another SIM slot",
    ),
    13: ErrorMeaning(
        meaning="incoming messages are barred on this line (often roaming or credit limits)",
        advice="Ask the user to check barring or roaming settings with their operator",
    ),
    21: ErrorMeaning(
        meaning="the network the phone is on does not support this message",
        advice="Ask the user whether they are roaming; a new code may work on another network",
    ),
    27: ErrorMeaning(
        meaning="the phone is switched off or out of coverage",
        advice="Ask the user to switch the phone on and check it has signal",
    ),
    31: ErrorMeaning(
        meaning="the phone was busy and could not take the message",
        advice="Ask the user to try again in a moment",
    ),
    32: ErrorMeaning(
        meaning="the phone did not accept the message (often its message memory is full)",
        advice="Ask the user to delete some text messages and restart the phone",
    ),
    33: ErrorMeaning(
        meaning="too many messages are waiting for this phone",
        advice="Ask the user to switch the phone on and check it has signal",
    ),
    34: ErrorMeaning(
        meaning="the operator reports the phone unreachable",
        advice="Ask the user to check signal",
    ),
    36: ErrorMeaning(
        meaning="the operator's network rejected the message data",
        advice="Try once more; if it repeats, report it to the technical team",
    ),
}

_STATUS_WORDS = {
    "DELIVRD": "delivered",
    "UNDELIV": "undeliverable",
    "EXPIRED": "expired at the operator",
    "REJECTD": "rejected",
    "DELETED": "deleted at the operator",
    "UNKNOWN": "unknown",
    "ACCEPTD": "accepted",
    "ENROUTE": "on its way",
}


def format_time(ms: int, now_ms: int | None = None) -> str:
    """'10:00:04 UTC', with the date when it is not the day of `now_ms`."""
    at = datetime.fromtimestamp(ms / 1000, tz=UTC)
    if now_ms is not None and at.date() == datetime.fromtimestamp(now_ms / 1000, tz=UTC).date():
        return at.strftime("%H:%M:%S UTC")
    return at.strftime("%d %b %Y %H:%M:%S UTC")


def format_duration(ms: float) -> str:
    """'0.4 s', '4 s', '2 min 5 s', '1 h 3 min'."""
    ms = max(ms, 0)
    if ms < 100:
        return "under 0.1 s"
    if ms < 1000:
        return f"{ms / 1000:.1f} s"
    seconds = round(ms / 1000)
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds} s" if seconds else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if minutes else f"{hours} h"


def error_meaning(code: str | None) -> ErrorMeaning | None:
    if code is None:
        return None
    text = code.strip()
    if not (text.isascii() and text.isdigit() and len(text) <= 4):
        return None
    return ERROR_CODES.get(int(text))


def _reported(event: DeliveryEvent) -> str:
    """'(UNDELIV, 034)': the provider's own words, as it sent them."""
    parts = [p for p in (event.provider_status, event.error_code) if p]
    return f" ({', '.join(parts)})" if parts else ""


def event_label(event: DeliveryEvent) -> str:
    """One line of an SMS's timeline."""
    provider = event.provider or "the provider"
    match event.status:
        case "queued":
            return f"Queued for {provider}"
        case "submitted":
            return f"Accepted by {provider}"
        case "flagged":
            return "Flagged by the fraud guard (sent anyway)"
        case "unknown":
            return f"Unreadable report from {provider}{_reported(event)}"
        case "failed":
            return f"Never accepted by {provider}{_reported(event)}"
    word = event.provider_status or ""
    meaning = _STATUS_WORDS.get(word.upper(), "")
    status = event.status.capitalize()
    detail = f": {meaning}" if meaning and meaning != event.status else ""
    return f"{status}, reported by {provider}{_reported(event)}{detail}"


def _first(events: tuple[DeliveryEvent, ...], *statuses: str) -> DeliveryEvent | None:
    return next((e for e in events if e.status in statuses), None)


class SmsContext(msgspec.Struct, frozen=True, kw_only=True):
    """What an SMS's advice depends on beyond its own events."""

    latest: bool
    """The verification's newest SMS (an older one's code no longer counts)."""
    status: str
    """The verification's status (views.py: pending, approved, failed, canceled, expired)."""
    can_resend: bool
    """Pending with sends left."""
    now_ms: int


def sms_words(sms: SmsView, context: SmsContext) -> Words:
    """What happened to one SMS, and what to tell the user about it."""
    events = sms.events
    terminal_statuses = {s.value for s in TERMINAL}
    queued = _first(events, "queued")
    submitted = _first(events, "submitted")
    final = _first(events, *terminal_statuses)
    start_ms = queued.at_ms if queued else (events[0].at_ms if events else context.now_ms)
    resend = "a new code can be sent now" if context.can_resend else "a new login sends a new code"
    if final is not None:
        return _terminal_words(final, start_ms, context, resend)
    if submitted is not None:
        waited = context.now_ms - submitted.at_ms
        if waited >= NO_REPORT_AFTER_MS:
            minutes = waited // 60_000
            return Words(
                tone="warn",
                what=(
                    f"No delivery report after {minutes} minute{'s' if minutes != 1 else ''}:"
                    " the operator has not confirmed delivery."
                ),
                tell=_ended_or(
                    context,
                    "The SMS may still arrive late, or never. Ask the user whether it came;"
                    f" if not, {resend}.",
                ),
            )
        return Words(
            tone="info",
            what=(
                f"Accepted by {submitted.provider or 'the provider'}"
                f" {format_duration(submitted.at_ms - start_ms)} after the request; waiting for"
                " the operator's delivery report."
            ),
            tell=_ended_or(context, "Ask the user to wait a few seconds for the SMS."),
        )
    waited = context.now_ms - start_ms
    if waited >= SLOW_QUEUE_MS:
        return Words(
            tone="bad",
            what=(
                f"Still not handed to the SMS provider after {format_duration(waited)}:"
                " the provider may be unreachable."
            ),
            tell="Report it to the technical team; the user cannot do anything about it.",
        )
    return Words(
        tone="info",
        what="Waiting to be handed to the SMS provider.",
        tell=_ended_or(context, "Ask the user to wait a few seconds for the SMS."),
    )


def _ended_or(context: SmsContext, advice: str) -> str:
    if context.status == "approved":
        return "Nothing to do: the user has entered the code."
    if not context.latest:
        return "A newer SMS replaced this one: only the newest code works."
    if context.status != "pending":
        return "This verification has ended: a new login sends a new code."
    return advice


def _terminal_words(final: DeliveryEvent, start_ms: int, context: SmsContext, resend: str) -> Words:
    reported = _reported(final)
    delay = format_duration(final.at_ms - start_ms)
    meaning = error_meaning(final.error_code)
    match final.status:
        case DeliveryStatus.DELIVERED:
            if context.status == "approved":
                tell = "Nothing to do: the user has entered the code."
            elif not context.latest:
                tell = "A newer SMS replaced this one: only the newest code works."
            elif context.status == "pending":
                tell = (
                    "The code is on the phone: ask the user to look for it (also among"
                    " filtered or spam messages) and type it as it is."
                )
            else:
                tell = "The code arrived but was not used in time: a new login sends a new one."
            return Words(
                tone="ok",
                what=f"Delivered {delay} after the request: the code reached the phone.",
                tell=tell,
            )
        case DeliveryStatus.UNDELIVERED:
            what = (
                f"The operator could not deliver the SMS{reported}: {meaning.meaning}."
                if meaning
                else f"The operator could not deliver the SMS{reported}."
            )
            advice = (
                f"{meaning.advice}; {resend}."
                if meaning
                else f"Ask the user to check the phone is on and has signal; {resend}."
            )
            return Words(tone="bad", what=what, tell=_ended_or(context, advice))
        case DeliveryStatus.EXPIRED:
            return Words(
                tone="bad",
                what=(
                    f"The operator kept trying but could not reach the phone before the message"
                    f" expired{reported}: it was probably off or out of coverage."
                ),
                tell=_ended_or(
                    context,
                    f"Ask the user to switch the phone on and check it has signal; {resend}.",
                ),
            )
        case DeliveryStatus.REJECTED:
            return Words(
                tone="bad",
                what=(
                    f"The SMS was refused before it reached the phone{reported}"
                    + (f": {meaning.meaning}." if meaning else ".")
                    + " Common causes: a number that cannot receive SMS, or a sender the"
                    " operator blocks."
                ),
                tell=_ended_or(
                    context,
                    "Check the number with the user; if it is right and this repeats, report it"
                    " to the technical team.",
                ),
            )
        case DeliveryStatus.FAILED:
            return Words(
                tone="bad",
                what=(
                    f"The SMS provider never accepted the SMS while the code was valid{reported}:"
                    " nothing reached the phone."
                ),
                tell=_ended_or(
                    context,
                    f"{resend[0].upper()}{resend[1:]}; if this repeats, report it to the"
                    " technical team (a provider outage).",
                ),
            )
    return Words(tone="info", what=f"Reported {final.status}{reported}.", tell="")


def flag_words(event: DeliveryEvent) -> str:
    """A send the fraud guard flagged in monitor mode."""
    detail = f": {event.detail}" if event.detail else ""
    return (
        f"The fraud guard found this send suspicious{detail}. It was sent anyway (the tenant's"
        " guard is in monitor mode)."
    )


def verification_words(details: VerificationDetails, now_ms: int) -> Words:
    """The verification as a whole: where it stands, and what to tell the user."""
    latest = details.sms[-1] if details.sms else None
    checks = f"{details.attempts_used} of {details.max_attempts} checks used"
    if details.wrong_checks:
        checks += f" ({details.wrong_checks} wrong)"
    match details.status:
        case "approved":
            took = (
                f" {format_duration(details.finished_ms - details.created_ms)} after the start"
                if details.finished_ms
                else ""
            )
            return Words(
                tone="ok",
                what=f"Approved{took}: the user entered the right code ({checks}).",
                tell="Nothing to do: this verification succeeded.",
            )
        case "canceled":
            return Words(
                tone="info",
                what="Canceled by the application before a right code was entered.",
                tell="The login was abandoned or restarted; a new login sends a new code.",
            )
        case "failed":
            return Words(
                tone="bad",
                what=(
                    f"Closed after {details.wrong_checks} wrong codes: every check was used"
                    " (maximum attempts reached)."
                ),
                tell=(
                    "Ask the user to start a new login and type the newest code exactly;"
                    " after a resend the older codes stop working."
                ),
            )
        case "expired":
            delivered = latest is not None and any(
                e.status == DeliveryStatus.DELIVERED for e in latest.events
            )
            return Words(
                tone="warn",
                what=(
                    f"Expired at {format_time(details.expires_ms, now_ms)} without a right code"
                    f" ({checks})" + (": the last SMS had reached the phone." if delivered else ".")
                ),
                tell="Ask the user to start a new login: it sends a new code.",
            )
    left = details.max_sends - details.sends
    return Words(
        tone="info",
        what=(
            f"Waiting for the user's code until {format_time(details.expires_ms, now_ms)}"
            f" ({checks}; {details.sends} of {details.max_sends} SMS sent)."
        ),
        tell=(
            "See the newest SMS below for what to tell the user."
            if left > 0
            else "No more SMS can be sent for this verification; a new login starts again."
        ),
    )


def block_words(block: FraudBlock) -> Words:
    """A fraud guard block in force on the number's prefix."""
    return Words(
        tone="bad",
        what=(
            f"The fraud guard is refusing codes to numbers like this one: {describe_block(block)}."
            " Starts for them are refused (no SMS, no verification) until then."
        ),
        tell=(
            "It protects against SMS pumping. If the user is genuine, ask an administrator to"
            " lift the block or to put the number on the tenant's safe list."
        ),
    )


def nothing_found_words(kind: str) -> Words:
    if kind == "id":
        return Words(
            tone="info",
            what="No verification with this id in your tenants: it is mistyped, another"
            " tenant's, or older than the retention window.",
            tell="Ask for the phone number instead and look that up.",
        )
    return Words(
        tone="info",
        what="No verification of this number within the retention window.",
        tell=(
            "The application never asked for a code for this number (check the number and the"
            " tenant), or it was too long ago. If the user just tried, ask them to try again now."
        ),
    )
