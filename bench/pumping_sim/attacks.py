"""The pumping attacks, one shape each, as the requests a bot makes during the measured days.
A bot never enters a code. Its numbers are valid mobiles (a pumping ring's ranges are real
ranges whose operator shares the revenue), mostly in countries the tenant does not serve."""

from __future__ import annotations

import random
from collections.abc import Callable

import msgspec

from .phones import plan
from .traffic import DAY_MS, HOUR_MS

MINUTE_MS = 60_000


class AttackRequest(msgspec.Struct, frozen=True):
    at_ms: int
    e164: str
    ip: str
    enters_code_after_ms: int = 0
    """0: never (a pumping bot has no way to read the code)."""


class Shape(msgspec.Struct, frozen=True, kw_only=True):
    key: str
    name: str
    description: str
    in_issue: bool = True
    """One of the issue's five shapes (else an extra that shows a limit of the guard)."""


Build = Callable[[int, int, random.Random, int], list[AttackRequest]]
"""(start of the measured days, their number, random source, prefix digits) -> requests."""


def _fresh_ip(rng: random.Random) -> str:
    """A residential-proxy address: a new one every time."""
    octets = (
        rng.randrange(160, 224),
        rng.randrange(256),
        rng.randrange(256),
        rng.randrange(1, 255),
    )
    return ".".join(map(str, octets))


def _bot_numbers(
    region: str, prefixes: int, count: int, rng: random.Random, digits: int
) -> list[str]:
    """`count` sequential mobiles, taken in turn from `prefixes` runs of one region."""
    mobiles = plan(region)
    per_run = -(-count // prefixes)
    runs = [
        mobiles.sequential(mobiles.random_prefix_start(rng, digits), per_run, digits)
        for _ in range(prefixes)
    ]
    out: list[str] = []
    index = 0
    while len(out) < count and any(runs):
        run = runs[index % prefixes]
        if run:
            out.append(run.pop(0))
        index += 1
    return out


def _every(start: int, end: int, step_ms: int) -> list[int]:
    return list(range(start, end, step_ms))


def burst(start: int, days: int, rng: random.Random, digits: int) -> list[AttackRequest]:
    """Bursts to sequential numbers of one prefix of a country the tenant does not serve
    (UZ), from three datacenter IPs: 200 requests in 10 minutes, twice a day."""
    times = [
        t
        for day in range(days)
        for hour in (3, 14)
        for t in _every(
            start + day * DAY_MS + hour * HOUR_MS,
            start + day * DAY_MS + hour * HOUR_MS + 10 * MINUTE_MS,
            3000,
        )
    ]
    numbers = _bot_numbers("UZ", 1, len(times), rng, digits)
    ips = [f"203.0.113.{n}" for n in (10, 11, 12)]
    return [
        AttackRequest(t, n, ips[i % 3])
        for i, (t, n) in enumerate(zip(times, numbers, strict=False))
    ]


def drip(start: int, days: int, rng: random.Random, digits: int) -> list[AttackRequest]:
    """A slow drip under the hourly floor: two requests an hour, all day, to sequential
    numbers of four prefixes of a country the tenant does not serve (KG), each from a fresh IP."""
    times = sorted(
        start + hour * HOUR_MS + rng.randrange(HOUR_MS)
        for hour in range(days * 24)
        for _ in range(2)
    )
    numbers = _bot_numbers("KG", 4, len(times), rng, digits)
    return [AttackRequest(t, n, _fresh_ip(rng)) for t, n in zip(times, numbers, strict=False)]


MANY_COUNTRIES = (
    "UZ", "KG", "TJ", "AZ", "ID", "NG", "PK", "BD", "LK", "KH",
    "VN", "PH", "EG", "TN", "MA", "IQ", "ET", "KE", "MM", "GE",
)  # fmt: skip


def many_countries(start: int, days: int, rng: random.Random, digits: int) -> list[AttackRequest]:
    """One IP asking for codes to 20 countries in turn: one request every 15 s for an hour,
    twice a day."""
    del digits
    times = [
        t
        for day in range(days)
        for hour in (6, 18)
        for t in _every(
            start + day * DAY_MS + hour * HOUR_MS,
            start + day * DAY_MS + (hour + 1) * HOUR_MS,
            15_000,
        )
    ]
    return [
        AttackRequest(
            t, plan(MANY_COUNTRIES[i % len(MANY_COUNTRIES)]).random_mobile(rng), "198.51.100.7"
        )
        for i, t in enumerate(times)
    ]


def rotating_ips(start: int, days: int, rng: random.Random, digits: int) -> list[AttackRequest]:
    """Every request from a fresh IP, to sequential numbers of two prefixes of a country the
    tenant does not serve (ID): one request every 20 s for six hours a day."""
    times = [
        t
        for day in range(days)
        for t in _every(
            start + day * DAY_MS + 8 * HOUR_MS, start + day * DAY_MS + 14 * HOUR_MS, 20_000
        )
    ]
    numbers = _bot_numbers("ID", 2, len(times), rng, digits)
    return [AttackRequest(t, n, _fresh_ip(rng)) for t, n in zip(times, numbers, strict=False)]


def served_gb(start: int, days: int, rng: random.Random, digits: int) -> list[AttackRequest]:
    """An attack in a country the tenant serves (GB, 200 logins a day): sequential numbers
    of eight GB mobile prefixes, fresh IPs, one request every 30 s from 09:00 to 17:00 UTC."""
    times = [
        t
        for day in range(days)
        for t in _every(
            start + day * DAY_MS + 9 * HOUR_MS, start + day * DAY_MS + 17 * HOUR_MS, 30_000
        )
    ]
    numbers = _bot_numbers("GB", 8, len(times), rng, digits)
    return [AttackRequest(t, n, _fresh_ip(rng)) for t, n in zip(times, numbers, strict=False)]


def served_pl(start: int, days: int, rng: random.Random, digits: int) -> list[AttackRequest]:
    """As (e), in the tenant's busiest country (PL, 3 000 logins a day): eight prefixes,
    fresh IPs, one request every 10 s from 10:00 to 16:00 UTC."""
    return _served_pl(start, days, rng, digits, 8)


def served_pl_wide(start: int, days: int, rng: random.Random, digits: int) -> list[AttackRequest]:
    """As (e2), spread over 30 prefixes."""
    return _served_pl(start, days, rng, digits, 30)


def _served_pl(
    start: int, days: int, rng: random.Random, digits: int, prefixes: int
) -> list[AttackRequest]:
    times = [
        t
        for day in range(days)
        for t in _every(
            start + day * DAY_MS + 10 * HOUR_MS, start + day * DAY_MS + 16 * HOUR_MS, 10_000
        )
    ]
    numbers = _bot_numbers("PL", prefixes, len(times), rng, digits)
    return [AttackRequest(t, n, _fresh_ip(rng)) for t, n in zip(times, numbers, strict=False)]


def converting(start: int, days: int, rng: random.Random, digits: int) -> list[AttackRequest]:
    """An attack that mimics conversion: a complicit operator reads the codes its ranges
    receive and the bot enters 85 % of them after 20 to 60 s. Eight PL prefixes, fresh IPs,
    one request every 10 s from 10:00 to 16:00 UTC."""
    return [
        msgspec.structs.replace(r, enters_code_after_ms=rng.randrange(20_000, 60_000))
        if rng.random() < 0.85
        else r
        for r in _served_pl(start, days, rng, digits, 8)
    ]


def drip_served(start: int, days: int, rng: random.Random, digits: int) -> list[AttackRequest]:
    """A slow drip in the busiest country the tenant serves (PL): two requests an hour
    to random PL mobiles, each from a fresh IP."""
    del digits
    mobiles = plan("PL")
    times = sorted(
        start + hour * HOUR_MS + rng.randrange(HOUR_MS)
        for hour in range(days * 24)
        for _ in range(2)
    )
    return [AttackRequest(t, mobiles.random_mobile(rng), _fresh_ip(rng)) for t in times]


def _shape(key: str, name: str, build: Build, *, in_issue: bool = True) -> tuple[Shape, Build]:
    return Shape(key=key, name=name, description=build.__doc__ or "", in_issue=in_issue), build


SHAPES: dict[str, tuple[Shape, Build]] = {
    shape.key: (shape, build)
    for shape, build in (
        _shape("a", "burst, one prefix, unserved country (UZ)", burst),
        _shape("b", "slow drip under the hourly floor (KG)", drip),
        _shape("c", "one IP, 20 countries", many_countries),
        _shape("d", "rotating IPs, two prefixes (ID)", rotating_ips),
        _shape("e", "served country (GB), 8 prefixes", served_gb),
        _shape("e2", "served country (PL), 8 prefixes", served_pl),
        _shape("e3", "served country (PL), 30 prefixes", served_pl_wide, in_issue=False),
        _shape("f", "mimics conversion (PL), 8 prefixes", converting, in_issue=False),
        _shape("b2", "slow drip in a served country (PL)", drip_served, in_issue=False),
    )
}
