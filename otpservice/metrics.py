"""Every Prometheus metric of the service, defined once. Recording never raises.

No label ever holds a phone number, an id or a code: countries are ISO regions, routes are
templates, everything else is a small fixed set of words.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import wraps
from typing import ParamSpec

from prometheus_client import Counter, Gauge, Histogram

log = logging.getLogger(__name__)
P = ParamSpec("P")

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_DELIVERY_BUCKETS = (0.5, 1, 2, 3, 5, 7.5, 10, 15, 20, 30, 45, 60, 90, 120, 180, 300, 600)
_VERIFY_BUCKETS = (5, 10, 15, 20, 30, 45, 60, 90, 120, 180, 300, 600, 900, 1800)

HTTP_REQUEST_SECONDS = Histogram(
    "otp_http_request_duration_seconds",
    "HTTP request latency by route template.",
    ["method", "route", "status"],
    buckets=_LATENCY_BUCKETS,
)
VERIFICATIONS_STARTED = Counter(
    "otp_verifications_started_total", "Verifications created.", ["country"]
)
VERIFICATIONS_APPROVED = Counter(
    "otp_verifications_approved_total", "Verifications approved by a right code.", ["country"]
)
CHECKS = Counter(
    "otp_checks_total",
    "Code checks by result: approved, wrong_code, failed (last attempt used), not_found.",
    ["result"],
)
SENDS = Counter(
    "otp_sends_total",
    "SMS sends by outcome: accepted, rejected, failed (never accepted), expired (dropped unsent).",
    ["provider", "lane", "outcome"],
)
PROVIDER_REQUEST_SECONDS = Histogram(
    "otp_provider_request_duration_seconds",
    "One call to the SMS provider, by outcome: accepted, rejected, unavailable.",
    ["provider", "outcome"],
    buckets=_LATENCY_BUCKETS,
)
DELIVERY_SECONDS = Histogram(
    "otp_delivery_seconds",
    "From the provider accepting an SMS to its terminal delivery report.",
    ["provider", "status", "country"],
    buckets=_DELIVERY_BUCKETS,
)
DLRS = Counter("otp_dlr_total", "Delivery reports received.", ["provider", "status"])
DLRS_UNMATCHED = Counter(
    "otp_dlr_unmatched_total",
    "Delivery reports for messages the service does not know.",
    ["provider"],
)
TIME_TO_VERIFY = Histogram(
    "otp_time_to_verify_seconds", "From start to approval.", buckets=_VERIFY_BUCKETS
)
RATE_LIMITED = Counter(
    "otp_rate_limited_total",
    "Requests refused by a limit: ip, number_hour, number_day, failed_checks, resend_cooldown,"
    " max_sends.",
    ["scope"],
)
# The lane lives in Redis: every process measures all of it, so processes are not summed.
LANE_DEPTH = Gauge(
    "otp_lane_depth",
    "SMS sends in the priority lane not yet finished (queued or with the provider), all processes.",
    multiprocess_mode="livemax",
)
LANE_OLDEST_SECONDS = Gauge(
    "otp_lane_oldest_pending_seconds",
    "Age of the oldest unfinished send in the priority lane.",
    multiprocess_mode="livemax",
)
LANE_REDELIVERIES = Counter(
    "otp_lane_redeliveries_total",
    "Sends claimed from a process that stopped or stalled and submitted again: each may reach"
    " the phone twice.",
    ["provider"],
)
LANE_DROPPED = Counter(
    "otp_lane_dropped_total",
    "Claimed sends not submitted: expired (code no longer valid; delivery recorded failed),"
    " stale (verification finished, gone or resent meanwhile).",
    ["reason"],
)
CIRCUIT_STATE = Gauge(
    "otp_provider_circuit_state",
    "Provider circuit breaker: 0 closed, 1 half-open, 2 open.",
    ["provider"],
    multiprocess_mode="livemax",
)
SHED = Counter(
    "otp_requests_shed_total",
    "Requests refused with 503 overloaded before any work, because this process's argon2 queue"
    " would have made them wait too long; by operation: start, resend, verify.",
    ["operation"],
)
FRAUD_DECISIONS = Counter(
    "otp_fraud_decisions_total",
    "The fraud guard's decisions against a send, by rule (country_budget, country_prefix,"
    " prefix_budget, ip_budget, ip_countries, country_cap) and action: blocked (refused) or"
    " flagged (sent, in monitor mode or for an alerting cap).",
    ["rule", "action"],
)
LOOP_LAG = Gauge(
    "otp_event_loop_lag_seconds",
    "How late the process's event loop ran its timers, worst of the last 2 s: high under"
    " overload, when requests are shed.",
    multiprocess_mode="livemax",
)
EVENTS_DELIVERED = Counter(
    "otp_events_delivered_total",
    "Tenant event webhooks a receiver took (2xx), by event type.",
    ["type"],
)
EVENT_FAILURES = Counter(
    "otp_event_delivery_failures_total",
    "Failed event webhook attempts, by reason: http_4xx, http_5xx, timeout, connect, render"
    " (each is retried with backoff for 24 h).",
    ["reason"],
)
EVENTS_DROPPED = Counter(
    "otp_events_dropped_total",
    "Events given up: gave_up (undelivered 24 h after they happened), unconfigured (the tenant"
    " no longer has an events_url).",
    ["reason"],
)
EVENTS_BACKLOG = Gauge(
    "otp_events_backlog",
    "Tenant events waiting to be delivered, all processes (read from Redis).",
    multiprocess_mode="livemax",
)
EVENTS_OLDEST_SECONDS = Gauge(
    "otp_events_oldest_age_seconds",
    "Age of the oldest tenant event not yet delivered.",
    multiprocess_mode="livemax",
)
STORE_UP = Gauge(
    "otp_store_up", "1 when the last Redis call succeeded, else 0.", multiprocess_mode="livemin"
)
STORE_ERRORS = Counter(
    "otp_store_errors_total", "Redis calls that failed or timed out.", ["operation"]
)

LANE = "priority"


def never_raises(func: Callable[P, None]) -> Callable[P, None]:
    """A metric must never break the request it describes."""

    @wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> None:
        try:
            func(*args, **kwargs)
        except Exception:
            log.warning("metric %s failed", func.__name__, exc_info=True)

    return wrapper


@never_raises
def observe_request(method: str, route: str, status: int, seconds: float) -> None:
    HTTP_REQUEST_SECONDS.labels(method, route, str(status)).observe(seconds)


@never_raises
def count_started(country: str) -> None:
    VERIFICATIONS_STARTED.labels(country).inc()


@never_raises
def count_check(result: str) -> None:
    CHECKS.labels(result).inc()


@never_raises
def count_approved(country: str, seconds_since_start: float) -> None:
    VERIFICATIONS_APPROVED.labels(country).inc()
    TIME_TO_VERIFY.observe(max(0.0, seconds_since_start))


@never_raises
def count_rate_limited(scope: str) -> None:
    RATE_LIMITED.labels(scope).inc()


@never_raises
def count_shed(operation: str) -> None:
    SHED.labels(operation).inc()


@never_raises
def count_fraud_decision(rule: str, action: str) -> None:
    FRAUD_DECISIONS.labels(rule, action).inc()


@never_raises
def count_event_delivered(event_type: str) -> None:
    EVENTS_DELIVERED.labels(event_type).inc()


@never_raises
def count_event_failure(reason: str) -> None:
    EVENT_FAILURES.labels(reason).inc()


@never_raises
def count_event_dropped(reason: str) -> None:
    EVENTS_DROPPED.labels(reason).inc()


@never_raises
def set_event_backlog(depth: int, oldest_seconds: float) -> None:
    EVENTS_BACKLOG.set(depth)
    EVENTS_OLDEST_SECONDS.set(oldest_seconds)


@never_raises
def set_loop_lag(seconds: float) -> None:
    LOOP_LAG.set(seconds)


@never_raises
def count_send(provider: str, outcome: str, count: int = 1) -> None:
    SENDS.labels(provider, LANE, outcome).inc(count)


@never_raises
def count_redelivery(provider: str) -> None:
    LANE_REDELIVERIES.labels(provider).inc()


@never_raises
def count_lane_dropped(reason: str, count: int) -> None:
    LANE_DROPPED.labels(reason).inc(count)


@never_raises
def observe_provider_call(provider: str, outcome: str, seconds: float) -> None:
    PROVIDER_REQUEST_SECONDS.labels(provider, outcome).observe(seconds)


@never_raises
def count_dlr(provider: str, status: str) -> None:
    DLRS.labels(provider, status).inc()


@never_raises
def count_unmatched_dlr(provider: str) -> None:
    DLRS_UNMATCHED.labels(provider).inc()


@never_raises
def observe_delivery(provider: str, status: str, country: str, seconds: float) -> None:
    DELIVERY_SECONDS.labels(provider, status, country).observe(max(0.0, seconds))


@never_raises
def set_lane(depth: int, oldest_seconds: float) -> None:
    LANE_DEPTH.set(depth)
    LANE_OLDEST_SECONDS.set(oldest_seconds)


@never_raises
def set_circuit_state(provider: str, state: int) -> None:
    CIRCUIT_STATE.labels(provider).set(state)


_store_up: list[bool | None] = [None]


@never_raises
def store_result(operation: str, ok: bool) -> None:
    # Called on every Redis call: with several workers a gauge write is an mmap write under a
    # lock, so write only when the state changes.
    if _store_up[0] is not ok:
        _store_up[0] = ok
        STORE_UP.set(1 if ok else 0)
    if not ok:
        STORE_ERRORS.labels(operation).inc()
