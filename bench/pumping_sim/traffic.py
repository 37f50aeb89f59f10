"""A tenant's legitimate traffic, day by day: countries of very different volume, a daily peak
in each country's local time, users who mostly enter their code within a minute or two (some
after one resend, some never), mobile numbers spread over each country's real blocks, and end-user
IPs as they are (a home line per user, carrier NAT and office IPs shared by many)."""

from __future__ import annotations

import math
import random

import msgspec

from .phones import plan

DAY_MS = 86_400_000
HOUR_MS = 3_600_000


class CountryTraffic(msgspec.Struct, frozen=True, kw_only=True):
    region: str
    per_day: int
    """Verifications started on an ordinary weekday."""
    utc_offset: int
    """Hours ahead of UTC (winter time): the daily peak follows local time."""
    conversion: float
    """Share of verifications whose code is entered."""


COUNTRIES: tuple[CountryTraffic, ...] = (
    CountryTraffic(region="PL", per_day=3000, utc_offset=1, conversion=0.92),
    CountryTraffic(region="DE", per_day=800, utc_offset=1, conversion=0.90),
    CountryTraffic(region="GB", per_day=200, utc_offset=0, conversion=0.88),
    CountryTraffic(region="CZ", per_day=30, utc_offset=1, conversion=0.90),
    CountryTraffic(region="LT", per_day=3, utc_offset=2, conversion=0.90),
)

DIURNAL = (
    0.6, 0.4, 0.3, 0.3, 0.4, 0.8, 1.5, 2.8, 4.2, 5.2, 5.8, 6.0,
    6.2, 6.0, 5.8, 5.7, 5.9, 6.3, 6.8, 7.2, 7.0, 5.8, 3.8, 1.8,
)  # fmt: skip
"""Share (%) of a day's logins in each local hour: quiet nights, an evening peak."""
WEEKDAY_FACTOR = (1.0, 1.02, 1.0, 1.03, 1.08, 0.85, 0.8)
"""Monday first: weekends are quieter."""
DAILY_NOISE = 0.05

CONVERTER_RESEND = 0.07
"""Users who enter their code, but only after asking for it once more."""
ABANDONER_RESEND = 0.30
"""Users who never enter a code but ask for a second one first."""
DELAY_MEDIAN_S = 30.0
DELAY_SIGMA = 0.55
"""Log-normal time to enter a code: about 95 % between 10 and 90 s."""
DELAY_RANGE_S = (8.0, 240.0)
RESEND_AFTER_S = (30.0, 90.0)
"""A resend waits for the policy's cool-off (30 s) and the user's patience."""

MOBILE_SHARE = 0.55
"""Logins from a phone on its carrier's NAT: one IP of a large pool, now and then shared."""
HEAVY_NAT_SHARE = 0.1
"""Of those, the share behind a carrier's few heavily shared NAT IPs (dozens of users a day)."""
OFFICE_SHARE = 0.05
"""Logins from an office or campus NAT: a few IPs shared by many users all day."""
HOME_IP_KEPT = 0.8
"""A home line keeps its IP from one login to the next this often (else a new dynamic one)."""
USERS_PER_DAILY_LOGIN = 6
"""A country's user base is this many times its daily logins (people log in every few days)."""


class User(msgspec.Struct, frozen=True):
    e164: str
    home_ip: str


class Session(msgspec.Struct, frozen=True, kw_only=True):
    """One verification a real user starts: when, to which number, from which IP, and what
    the user does next (0: never)."""

    sid: int
    region: str
    e164: str
    ip: str
    start_ms: int
    resend_ms: int
    approve_ms: int


class _CountryPeople:
    def __init__(self, country: CountryTraffic, index: int, daily: float, rng: random.Random):
        mobiles = plan(country.region)
        size = max(10, int(daily * USERS_PER_DAILY_LOGIN))
        self.index = index
        self.users = [User(mobiles.random_mobile(rng), _ip(1, index, n)) for n in range(size)]
        self.carrier_ips = [_ip(2, index, n) for n in range(max(8, int(daily * 2)))]
        self.heavy_nat_ips = [_ip(3, index, n) for n in range(2)]
        self.office_ips = [_ip(4, index, n) for n in range(max(1, int(daily / 150)))]
        self.dynamic = 0

    def ip_for(self, user: User, rng: random.Random) -> str:
        draw = rng.random()
        if draw < MOBILE_SHARE:
            if rng.random() < HEAVY_NAT_SHARE:
                return rng.choice(self.heavy_nat_ips)
            return rng.choice(self.carrier_ips)
        if draw < MOBILE_SHARE + OFFICE_SHARE:
            return rng.choice(self.office_ips)
        if rng.random() < HOME_IP_KEPT:
            return user.home_ip
        self.dynamic += 1
        return _ip(5, self.index, self.dynamic)


def _ip(kind: int, country: int, n: int) -> str:
    """Distinct addresses per kind and country (only their HMAC tags reach Redis)."""
    return f"{kind * 40 + country}.{n // 65536 % 256}.{n // 256 % 256}.{n % 256}"


def _delay_s(rng: random.Random, median: float) -> float:
    low, high = DELAY_RANGE_S
    return min(high, max(low, rng.lognormvariate(math.log(median), DELAY_SIGMA)))


def legit_sessions(
    start_ms: int, days: int, scale: float, seed: int, countries: tuple[CountryTraffic, ...]
) -> list[Session]:
    """Every legitimate verification of `days` days from `start_ms` (a UTC midnight)."""
    rng = random.Random(f"legit:{seed}")
    out: list[Session] = []
    for index, country in enumerate(countries):
        daily = country.per_day * scale
        people = _CountryPeople(country, index, daily, rng)
        for day in range(days):
            weekday = (start_ms // DAY_MS + day + 3) % 7  # 1970-01-01 was a Thursday
            count = round(daily * WEEKDAY_FACTOR[weekday] * rng.gauss(1.0, DAILY_NOISE))
            hours = rng.choices(range(24), DIURNAL, k=max(0, count))
            for local_hour in hours:
                utc_hour = (local_hour - country.utc_offset) % 24
                at = start_ms + day * DAY_MS + utc_hour * HOUR_MS + rng.randrange(HOUR_MS)
                user = rng.choice(people.users)
                ip = people.ip_for(user, rng)
                out.append(_session(len(out), country, user, ip, at=at, rng=rng))
    out.sort(key=lambda s: s.start_ms)
    return out


def _session(
    sid: int, country: CountryTraffic, user: User, ip: str, *, at: int, rng: random.Random
) -> Session:
    resend = approve = 0
    if rng.random() < country.conversion:
        if rng.random() < CONVERTER_RESEND:
            resend = at + int(rng.uniform(*RESEND_AFTER_S) * 1000)
            approve = resend + int(_delay_s(rng, DELAY_MEDIAN_S * 0.8) * 1000)
        else:
            approve = at + int(_delay_s(rng, DELAY_MEDIAN_S) * 1000)
    elif rng.random() < ABANDONER_RESEND:
        resend = at + int(rng.uniform(*RESEND_AFTER_S) * 1000)
    return Session(
        sid=sid,
        region=country.region,
        e164=user.e164,
        ip=ip,
        start_ms=at,
        resend_ms=resend,
        approve_ms=approve,
    )
