"""What the templates get: the use cases' results with every sentence and time already made
(wording.py), so templates only lay them out."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

from otpservice.console import charts
from otpservice.console.wording import (
    SmsContext,
    block_words,
    event_label,
    flag_words,
    format_duration,
    format_time,
    nothing_found_words,
    sms_words,
    verification_words,
)
from otpservice.domain.stats import WindowSummary
from otpservice.usecases.support import AuditEntry, LookupResult, Overview


def lookup_view(result: LookupResult) -> dict[str, Any]:
    now = result.now_ms
    verifications = []
    for details in result.verifications:
        can_resend = details.status == "pending" and details.sends < details.max_sends
        sms = []
        for sent in details.sms:
            context = SmsContext(
                latest=sent.send == details.sends,
                status=details.status,
                can_resend=can_resend,
                now_ms=now,
            )
            sms.append(
                {
                    "send": sent.send,
                    "words": sms_words(sent, context),
                    "flags": [flag_words(e) for e in sent.events if e.status == "flagged"],
                    "events": [
                        {
                            "at": format_time(e.at_ms, now),
                            "label": event_label(e),
                            "status": e.status,
                        }
                        for e in sent.events
                        if e.status != "flagged"
                    ],
                }
            )
        verifications.append(
            {
                "details": details,
                "words": verification_words(details, now),
                "created": format_time(details.created_ms, now),
                "expires": format_time(details.expires_ms, now),
                "finished": format_time(details.finished_ms, now) if details.finished_ms else "",
                "sms": sms,
            }
        )
    return {
        "result": result,
        "verifications": verifications,
        "blocks": [block_words(block) for block in result.blocks],
        "nothing": nothing_found_words(result.kind) if not result.verifications else None,
        "now": format_time(now, now),
    }


def _hhmm(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%H:%M")


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f} %"


def _ms(value: float | None) -> str:
    if value is None:
        return "-"
    if math.isinf(value):
        return "over 5 min"
    return format_duration(value)


def window_view(window: WindowSummary, now_ms: int) -> dict[str, Any]:
    return {
        "since": format_time(window.since_ms, now_ms),
        "started": window.started,
        "sent": window.sent,
        "delivered": window.delivered,
        "approved": window.approved,
        "delivered_pct": _pct(window.delivered_pct),
        "conversion_pct": _pct(window.conversion_pct),
        "median": _ms(window.median_ms),
        "p90": _ms(window.p90_ms),
        "statuses": window.statuses,
        "provider_statuses": window.provider_statuses,
        "countries": [
            {
                "country": row.country,
                "started": row.started,
                "sent": row.sent,
                "delivered": row.delivered,
                "not_delivered": row.not_delivered,
                "approved": row.approved,
                "delivered_pct": _pct(row.delivered_pct),
                "conversion_pct": _pct(row.conversion_pct),
            }
            for row in window.countries
        ],
        "chart": charts.sent_and_delivered(window.points, _hhmm),
    }


def overview_view(overview: Overview) -> dict[str, Any]:
    return {
        "tenant": overview.tenant,
        "now": format_time(overview.now_ms, overview.now_ms),
        "hour": window_view(overview.last_hour, overview.now_ms),
        "day": window_view(overview.last_day, overview.now_ms),
    }


def audit_rows(entries: list[AuditEntry]) -> list[dict[str, Any]]:
    now = max((e.at_ms for e in entries), default=0)
    return [
        {
            "at": format_time(e.at_ms, now),
            "user": e.user,
            "tenant": e.tenant,
            "kind": "verification id" if e.kind == "id" else "number",
            "query": e.query,
            "found": e.found,
        }
        for e in entries
    ]
