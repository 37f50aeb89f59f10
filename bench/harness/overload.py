"""The overload phase: logins offered on a fixed schedule (open loop) at a multiple of the rate
the machine serves, whatever the answers. Every request to the service is recorded (status,
problem code, Retry-After, latency); each accepted start is matched, by phone number, with the
moment the fake provider received its SMS; the service's own shed counter and event-loop lag
are sampled from /metrics meanwhile."""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path

import httpx
import msgspec

from harness import log
from harness.loader import Loader, LoadOptions
from harness.results import LatencyStats, Overload, Phase
from harness.servers import wait_provider_idle

MAX_INFLIGHT_LIMIT = 8_000
"""Logins in flight at most (two connections each): the load generator's descriptors."""
METRICS_INTERVAL_S = 1.0
MAX_METRICS_SAMPLES = 1_000
SHED_LINE = re.compile(
    r'^otp_requests_shed_total\{operation="([^"]+)"\} ([0-9.e+-]+)$', re.MULTILINE
)
LAG_LINE = re.compile(r"^otp_event_loop_lag_seconds(?:\{[^}]*\})? ([0-9.e+-]+)$", re.MULTILINE)


class RequestTrace(msgspec.Struct):
    """One request to the service, as bench/load.py --records-out writes it."""

    sent: float
    """Seconds since the load run began (monotonic)."""
    ms: float
    status: str
    """The HTTP status, or the transport failure (`timeout`, `ConnectionResetError`...)."""
    code: str | None
    retry_after: bool
    wall: float
    """time.time() when the answer (or the failure) came."""


class LoginTrace(msgspec.Struct):
    number: str
    scheduled: float
    lag_ms: float
    start: RequestTrace | None = None
    verify: RequestTrace | None = None
    done: float | None = None
    approved: bool = False


class Records(msgspec.Struct):
    window_from: float
    window_to: float
    logins: list[LoginTrace]


def latency(values_ms: list[float]) -> LatencyStats:
    """Nearest-rank p50 and p99, and the max, as load.py computes them."""
    ordered = sorted(values_ms)

    def pct(q: float) -> float | None:
        if not ordered:
            return None
        index = min(len(ordered) - 1, max(0, round(q * len(ordered) + 0.5) - 1))
        return round(ordered[index], 3)

    return LatencyStats(
        count=len(ordered),
        p50_ms=pct(0.50),
        p99_ms=pct(0.99),
        max_ms=round(ordered[-1], 3) if ordered else None,
    )


class MetricsSampler(threading.Thread):
    """Scrapes the service's /metrics every METRICS_INTERVAL_S until stopped: the shed counter
    at the first and last scrape, and the worst event-loop lag seen (the gauge is already the
    worst of the last 2 s of each process)."""

    def __init__(self, service_url: str) -> None:
        super().__init__(name="metrics-sampler", daemon=True)
        self.url = f"{service_url}/metrics"
        self.stopping = threading.Event()
        self.first: dict[str, float] | None = None
        self.last: dict[str, float] = {}
        self.lag_max: float | None = None
        self.failures = 0

    def scrape(self, client: httpx.Client) -> None:
        try:
            text = client.get(self.url).text
        except httpx.HTTPError:
            self.failures += 1
            return
        shed = {op: float(n) for op, n in SHED_LINE.findall(text)}
        if self.first is None:
            self.first = shed
        self.last = shed
        for value in LAG_LINE.findall(text):
            self.lag_max = max(self.lag_max or 0.0, float(value))

    def run(self) -> None:
        with httpx.Client(timeout=5) as client:
            for _ in range(MAX_METRICS_SAMPLES):
                self.scrape(client)
                if self.stopping.wait(METRICS_INTERVAL_S):
                    break
            self.scrape(client)

    def stop(self) -> None:
        self.stopping.set()
        self.join(timeout=15)

    def shed_counted(self) -> dict[str, float]:
        first = self.first or {}
        return {op: round(n - first.get(op, 0.0), 1) for op, n in sorted(self.last.items())}


def _arrivals(provider_url: str) -> dict[str, float]:
    """Wall-clock arrival of every SMS the provider accepted while recording, by number."""
    pairs = httpx.get(f"{provider_url}/bench/arrivals", timeout=30).json()
    return {"+" + str(number).lstrip("+"): float(at) for number, at in pairs}


def _record_arrivals(provider_url: str, *, on: bool) -> None:
    response = httpx.post(f"{provider_url}/bench/arrivals", json={"record": on}, timeout=5)
    response.raise_for_status()


def run_overload(
    loader: Loader,
    *,
    reference_login_per_s: float,
    multiple: float,
    duration: float,
    warmup: float,
    scratch: Path,
    records_copy: Path | None = None,
) -> Overload:
    """Offer `multiple` x the reference rate for `duration` s (after `warmup` s)."""
    offered = multiple * reference_login_per_s
    max_inflight = int(min(MAX_INFLIGHT_LIMIT, max(512, 4 * offered)))
    records_path = scratch / "overload-records.json"
    log(f"overload: {offered:.0f} logins/s offered ({multiple:g} x {reference_login_per_s}/s)")
    _record_arrivals(loader.provider_url, on=True)
    sampler = MetricsSampler(loader.service_url)
    sampler.start()
    try:
        phase = loader.run(
            "login",
            concurrency=1,
            duration=duration,
            warmup=warmup,
            options=LoadOptions(rate=offered, records_out=records_path, max_inflight=max_inflight),
        )
    finally:
        sampler.stop()
    wait_provider_idle(loader.provider_url)
    fetched_at = time.time()
    arrivals = _arrivals(loader.provider_url)
    _record_arrivals(loader.provider_url, on=False)
    raw = records_path.read_bytes()
    if records_copy is not None:
        records_copy.write_bytes(raw)
    records = msgspec.json.decode(raw, type=Records)
    result = summarize(records, arrivals, phase, fetched_at=fetched_at)
    result.reference_login_per_s = reference_login_per_s
    result.multiple = multiple
    result.offered_per_s = round(offered, 2)
    result.service_shed_counter = sampler.shed_counted()
    if sampler.lag_max is not None:
        result.service_loop_lag_max_ms = round(1000 * sampler.lag_max, 1)
    log(
        f"overload: goodput {result.goodput_per_s}/s, shed {result.shed_share:.1%}, answers p99"
        f" {result.answer_latency.p99_ms} ms max {result.answer_latency.max_ms} ms,"
        f" service_unavailable {result.service_unavailable}, SMS p99"
        f" {result.time_to_provider.p99_ms} ms ({result.sms_missing} missing)"
    )
    return result


def _answer_kind(trace: RequestTrace) -> str:
    if not trace.status.isdigit():
        return "no_answer"
    if trace.status.startswith("2"):
        return "ok"
    if trace.status == "503" and trace.code in {"overloaded", "service_unavailable"}:
        return trace.code
    return "other_non_2xx"


def summarize(
    records: Records, arrivals: dict[str, float], phase: Phase, *, fetched_at: float
) -> Overload:
    """The phase's figures from its records: the logins scheduled in the measured window."""
    logins = [
        login
        for login in records.logins
        if records.window_from <= login.scheduled < records.window_to
    ]
    by_answer: dict[str, dict[str, int]] = {"start": {}, "verify": {}}
    kinds: dict[str, dict[str, int]] = {"start": {}, "verify": {}}
    answered: list[float] = []
    shed: list[float] = []
    failed: list[float] = []
    missing_retry_after = 0
    for login in logins:
        for call, trace in (("start", login.start), ("verify", login.verify)):
            if trace is None:
                continue
            kind = _answer_kind(trace)
            label = f"{trace.status} {trace.code}" if trace.code else trace.status
            by_answer[call][label] = by_answer[call].get(label, 0) + 1
            kinds[call][kind] = kinds[call].get(kind, 0) + 1
            if kind == "no_answer":
                failed.append(trace.ms)
                continue
            answered.append(trace.ms)
            if kind == "overloaded":
                shed.append(trace.ms)
                missing_retry_after += not trace.retry_after

    def total(kind: str) -> int:
        return sum(k.get(kind, 0) for k in kinds.values())

    def shed_share(call: str) -> float:
        answers = sum(n for kind, n in kinds[call].items() if kind != "no_answer")
        return round(kinds[call].get("overloaded", 0) / answers, 4) if answers else 0.0

    accepted = [x.start for x in logins if x.start is not None and x.start.status == "201"]
    to_provider = []
    missing = 0
    for login in logins:
        start = login.start
        if start is None or start.status != "201":
            continue
        arrived = arrivals.get(login.number)
        if arrived is None:
            missing += 1
            to_provider.append(1000 * (fetched_at - start.wall))  # at least this long
        else:
            to_provider.append(1000 * (arrived - start.wall))
    verified = [
        x.verify.ms for x in logins if x.verify is not None and x.verify.status.startswith("2")
    ]
    window = records.window_to - records.window_from
    generator_s = phase.cpu.cpu_s.get("load generator")
    arrivals_all = phase.load.rate * records.window_to
    service_ms = [v for k, v in phase.cpu_ms_per_op.items() if k.startswith("service")]
    lags = [x.lag_ms for x in logins]
    return Overload(
        reference_login_per_s=0.0,
        multiple=0.0,
        offered_per_s=phase.load.rate,
        arrivals=len(logins),
        window_s=round(window, 3),
        completed=phase.load.count,
        goodput_per_s=phase.load.rps,
        answers=len(answered),
        by_answer=by_answer,
        overloaded=total("overloaded"),
        service_unavailable=total("service_unavailable"),
        other_non_2xx=total("other_non_2xx"),
        no_answer=total("no_answer"),
        overloaded_without_retry_after=missing_retry_after,
        shed_share=round(len(shed) / len(answered), 4) if answered else 0.0,
        starts_shed_share=shed_share("start"),
        verifies_shed_share=shed_share("verify"),
        answer_latency=latency(answered),
        shed_latency=latency(shed),
        accepted_start_latency=latency([s.ms for s in accepted]),
        verify_ok_latency=latency(verified),
        no_answer_max_ms=round(max(failed), 3) if failed else None,
        time_to_provider=latency(to_provider),
        sms_missing=missing,
        sms_waited_s=round(fetched_at - max((s.wall for s in accepted), default=fetched_at), 1),
        schedule_lag=latency(lags),
        max_in_flight=phase.load.max_in_flight,
        connections_opened=phase.load.connections_opened,
        generator_cpu_ms_per_arrival=(
            round(1000 * generator_s / arrivals_all, 3) if generator_s and arrivals_all else None
        ),
        generator_cpu_pct_of_core=(
            round(100 * generator_s / records.window_to, 1) if generator_s else None
        ),
        service_cpu_ms_per_login=round(sum(service_ms), 2) if service_ms else None,
        service_shed_counter={},
        service_loop_lag_max_ms=None,
        phase=phase,
    )
