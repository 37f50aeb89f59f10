"""The overload phase's rows in the figures table: what was offered and how well the generator
kept to it, goodput and CPU, every answer by status and problem code, and the SMS times."""

from __future__ import annotations

from harness.comparison import fmt
from harness.results import Figures, LatencyStats, Overload


def _ms(stats: LatencyStats) -> str:
    return f"{fmt(stats.p50_ms)}/{fmt(stats.p99_ms)}/{fmt(stats.max_ms)} ms"


def _answers(counts: dict[str, int]) -> str:
    ordered = sorted(counts.items(), key=lambda kv: -kv[1])
    return ", ".join(f"{label} x {n:,}" for label, n in ordered) or "none"


def _service_cpu(over: Overload) -> str:
    per = {
        k.removeprefix("service "): v
        for k, v in over.phase.cpu_ms_per_op.items()
        if k.startswith("service")
    }
    return ", ".join(f"{k} {v:.3g}" for k, v in sorted(per.items(), key=lambda kv: -kv[1]))


def overload_rows(over: Overload | None, f: Figures) -> list[tuple[str, str, str]]:
    """Five rows of the figures table (MISSING everywhere when the phase did not run)."""
    if over is None:
        return [("overload (open loop)", "MISSING", "the phase did not run")]
    load = over.phase.load
    share = over.goodput_per_s / over.reference_login_per_s if over.reference_login_per_s else None
    shed_counter = ", ".join(f"{k} {v:g}" for k, v in over.service_shed_counter.items()) or "-"
    return [
        (
            f"overload: logins offered/s (open loop, {over.multiple:g} x the c=16 rate)",
            fmt(f.overload_offered_per_s),
            (
                f"{over.arrivals:,} logins scheduled in the {over.window_s:g} s window; load"
                " generator: start of a login behind schedule p50/p99/max"
                f" {_ms(over.schedule_lag)},"
                f" up to {over.max_in_flight:,} logins in flight, {over.connections_opened:,}"
                f" connections opened, {load.dropped} dropped, CPU"
                f" {fmt(over.generator_cpu_ms_per_arrival, 3)} ms per login offered"
                f" ({fmt(over.generator_cpu_pct_of_core)} % of one core)"
            ),
        ),
        (
            "overload: goodput (completed logins/s)",
            fmt(f.overload_goodput_per_s),
            (
                f"{fmt(share, 2)} x the c=16 rate; service CPU per completed login"
                f" {fmt(f.overload_service_cpu_ms_per_login, 1)} ms ({_service_cpu(over)}); answers"
                f" shed: {over.shed_share:.1%} (starts {over.starts_shed_share:.1%}, verifies"
                f" {over.verifies_shed_share:.1%}); otp_requests_shed_total over the phase:"
                f" {shed_counter}; otp_event_loop_lag_seconds up to"
                f" {fmt(over.service_loop_lag_max_ms)} ms"
            ),
        ),
        (
            "overload: answers p99 / max (ms)",
            f"{fmt(f.overload_answer_p99_ms)} / {fmt(f.overload_answer_max_ms)}",
            (
                f"{over.answers:,} answers; start: {_answers(over.by_answer.get('start', {}))};"
                f" verify: {_answers(over.by_answer.get('verify', {}))}; service_unavailable"
                f" {over.service_unavailable}, other non-2xx {over.other_non_2xx}, no answer"
                f" {over.no_answer}; sheds p50/p99/max {_ms(over.shed_latency)},"
                f" {over.overloaded_without_retry_after} without Retry-After"
            ),
        ),
        (
            "overload: accepted starts p99 (ms)",
            fmt(f.overload_accepted_start_p99_ms),
            (
                f"{over.accepted_start_latency.count:,} accepted, p50/p99/max"
                f" {_ms(over.accepted_start_latency)}; verify answered 200:"
                f" {_ms(over.verify_ok_latency)}"
            ),
        ),
        (
            "overload: start answer to SMS at the provider p99 (ms)",
            fmt(f.overload_time_to_provider_p99_ms),
            (
                f"p50/p99/max {_ms(over.time_to_provider)} over {over.time_to_provider.count:,}"
                f" accepted starts, matched by number with the fake provider's arrival times;"
                f" {over.sms_missing} SMS missing {over.sms_waited_s:g} s after the last start"
            ),
        ),
    ]
