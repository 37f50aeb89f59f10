"""The support console's delivery statistics: what the counters mean and the figures drawn
from them (rates, median and p90 time to deliver). No I/O: the counters come in as mappings.

The scripts count, per tenant and period, under `<counter>|<detail>` (store/stats.py strips
the tenant): `started|PL`, `sent|PL`, `approved|PL`, `delivered|PL` (and every other terminal
delivery status), `ps|UNDELIV 034` (the provider's status word and error code of a terminal
report) and `tt|<bound>` (time from submission to delivery, bucketed by DELIVERY_BOUNDS_MS).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence

import msgspec

DELIVERY_BOUNDS_MS = (1000, 2000, 3000, 5000, 10000, 20000, 30000, 60000, 120000, 300000)
"""Upper bounds of the time-to-deliver buckets (the last bucket, `inf`, is open): the same
figures as _prelude.lua's DELIVERY_BOUNDS_MS."""
TERMINAL_COUNTERS = ("delivered", "undelivered", "expired", "rejected", "failed")


class _Rates(msgspec.Struct, frozen=True, kw_only=True):
    """The counts both a window and a country row have, and their rates."""

    started: int
    sent: int
    delivered: int
    approved: int

    @property
    def delivered_pct(self) -> float | None:
        return percent(self.delivered, self.sent)

    @property
    def conversion_pct(self) -> float | None:
        return percent(self.approved, self.started)


class CountryRow(_Rates, frozen=True, kw_only=True):
    country: str
    not_delivered: int
    """Undelivered, expired, rejected and failed sends."""


class PeriodPoint(msgspec.Struct, frozen=True, kw_only=True):
    start_ms: int
    sent: int
    delivered: int


class WindowSummary(_Rates, frozen=True, kw_only=True):
    """One window (the last hour, the last day) of one tenant."""

    since_ms: int
    statuses: tuple[tuple[str, int], ...]
    """Terminal delivery statuses, most frequent first."""
    provider_statuses: tuple[tuple[str, int], ...]
    countries: tuple[CountryRow, ...]
    """Busiest first."""
    median_ms: float | None
    """None without any timed delivery; math.inf when it lies past the last bound."""
    p90_ms: float | None
    points: tuple[PeriodPoint, ...]
    """Per period, oldest first: the chart."""


def percent(part: int, whole: int) -> float | None:
    return None if whole <= 0 else 100.0 * part / whole


def quantile_ms(histogram: Mapping[str, int], q: float) -> float | None:
    """The q-quantile of the bucketed delivery times, interpolated linearly inside its bucket
    (as Prometheus' histogram_quantile does); math.inf when it falls in the open bucket."""
    counts = [max(0, histogram.get(str(bound), 0)) for bound in DELIVERY_BOUNDS_MS]
    overflow = max(0, histogram.get("inf", 0))
    total = sum(counts) + overflow
    if total == 0:
        return None
    rank = q * total
    below = 0
    lower = 0
    for bound, count in zip(DELIVERY_BOUNDS_MS, counts, strict=True):
        if count and below + count >= rank:
            return lower + (bound - lower) * (rank - below) / count
        below += count
        lower = bound
    return math.inf


def summarise(since_ms: int, periods: Sequence[tuple[int, Mapping[str, int]]]) -> WindowSummary:
    """The window made of `periods` ((start ms, counters), oldest first)."""
    total: Counter[str] = Counter()
    points = []
    for start_ms, counters in periods:
        total.update(counters)
        points.append(
            PeriodPoint(
                start_ms=start_ms,
                sent=_sum(counters, "sent"),
                delivered=_sum(counters, "delivered"),
            )
        )
    by_kind: dict[str, Counter[str]] = {}
    for field, count in total.items():
        kind, _, detail = field.partition("|")
        by_kind.setdefault(kind, Counter())[detail] += count
    empty: Counter[str] = Counter()
    countries = sorted(
        set().union(*(by_kind.get(k, empty) for k in ("started", "sent", *TERMINAL_COUNTERS))),
    )
    rows = [
        CountryRow(
            country=country,
            started=by_kind.get("started", empty)[country],
            sent=by_kind.get("sent", empty)[country],
            delivered=by_kind.get("delivered", empty)[country],
            approved=by_kind.get("approved", empty)[country],
            not_delivered=sum(
                by_kind.get(k, empty)[country] for k in TERMINAL_COUNTERS if k != "delivered"
            ),
        )
        for country in countries
    ]
    rows.sort(key=lambda row: (-row.sent, row.country))
    histogram = dict(by_kind.get("tt", empty))
    return WindowSummary(
        since_ms=since_ms,
        started=_sum(total, "started"),
        sent=_sum(total, "sent"),
        delivered=_sum(total, "delivered"),
        approved=_sum(total, "approved"),
        statuses=_ranked({k: _sum(total, k) for k in TERMINAL_COUNTERS}),
        provider_statuses=_ranked(by_kind.get("ps", empty)),
        countries=tuple(rows),
        median_ms=quantile_ms(histogram, 0.5),
        p90_ms=quantile_ms(histogram, 0.9),
        points=tuple(points),
    )


def _sum(counters: Mapping[str, int], kind: str) -> int:
    prefix = kind + "|"
    return sum(count for field, count in counters.items() if field.startswith(prefix))


def _ranked(counts: Mapping[str, int]) -> tuple[tuple[str, int], ...]:
    return tuple(sorted(((k, v) for k, v in counts.items() if v > 0), key=lambda i: (-i[1], i[0])))
