"""What a simulator run measured, as typed msgspec Structs (the results JSON is `RunResult`),
and the issue's goals each attack shape is held to."""

from __future__ import annotations

from pathlib import Path

import msgspec

from otpservice.domain.fraud import FraudPolicy

GOAL_REFUSED_SHARE = 0.95
"""At least this share of an attack's SMS refused."""
GOAL_SENT_BEFORE_BLOCK = 30
"""At most this many attack SMS out before the first refusal."""
GOAL_LEGIT_REFUSED_SHARE = 0.005
"""At most this share of legitimate sends refused."""


class Scenario(msgspec.Struct, frozen=True, kw_only=True):
    seed: int = 1
    warmup_days: int = 7
    """Days of legitimate traffic only: the history the budgets grow from."""
    measured_days: int = 2
    """Days with the attacks."""
    scale: float = 1.0
    """The legitimate volumes of traffic.COUNTRIES times this."""
    shapes: tuple[str, ...] = ("a", "b", "c", "d", "e", "e2", "e3", "f", "b2")
    fraud: FraudPolicy = FraudPolicy()
    """Every tenant's guard settings: the defaults unless a run asks for others."""


FULL = Scenario()
QUICK = Scenario(warmup_days=3, measured_days=1, scale=0.25)


class Sends(msgspec.Struct, kw_only=True):
    """Sends asked for (first sends and resends), and those the guard refused, by rule."""

    attempts: int = 0
    refused: int = 0
    by_rule: dict[str, int] = msgspec.field(default_factory=dict)

    def add(self, refused_by: str | None) -> None:
        self.attempts += 1
        if refused_by is not None:
            self.refused += 1
            self.by_rule[refused_by] = self.by_rule.get(refused_by, 0) + 1

    @property
    def share(self) -> float:
        return self.refused / self.attempts if self.attempts else 0.0


class LegitFigures(msgspec.Struct, kw_only=True):
    total: Sends = msgspec.field(default_factory=Sends)
    by_country: dict[str, Sends] = msgspec.field(default_factory=dict)
    by_day: list[Sends] = msgspec.field(default_factory=list)
    """Day by day, from the first day of the period."""

    def add(self, region: str, day: int, refused_by: str | None) -> None:
        self.total.add(refused_by)
        self.by_country.setdefault(region, Sends()).add(refused_by)
        while len(self.by_day) <= day:
            self.by_day.append(Sends())
        self.by_day[day].add(refused_by)


class AttackFigures(msgspec.Struct, kw_only=True):
    sends: Sends = msgspec.field(default_factory=Sends)
    sent_before_first_refusal: int = 0
    """All of them when none was refused."""
    first_refusal_rule: str = ""
    first_refusal_after_s: float | None = None
    """Seconds from the attack's first request to its first refusal."""
    sent_by_day: list[int] = msgspec.field(default_factory=list)

    @property
    def sent(self) -> int:
        return self.sends.attempts - self.sends.refused


class ShapeResult(msgspec.Struct, kw_only=True):
    key: str
    name: str
    description: str
    in_issue: bool
    attack: AttackFigures | None
    """None for the baseline (legitimate traffic alone)."""
    legit: LegitFigures
    """During the measured days."""
    legit_warmup: LegitFigures

    def goals(self) -> dict[str, bool]:
        out = {"legit_refused": self.legit.total.share <= GOAL_LEGIT_REFUSED_SHARE}
        if self.attack is not None:
            out["attack_refused"] = self.attack.sends.share >= GOAL_REFUSED_SHARE
            out["before_block"] = self.attack.sent_before_first_refusal <= GOAL_SENT_BEFORE_BLOCK
        return out


class MemoryFigures(msgspec.Struct, kw_only=True):
    """The counters of one tenant (the baseline's) at the end of a run, from MEMORY USAGE."""

    day_hash_bytes: int
    hour_hash_bytes: int
    day_keys: int
    hour_keys: int
    scopes: dict[str, int]
    """Distinct scopes counted in the kept days: countries, prefixes, IPs."""
    scope_days: int
    """Sum over the day hashes of the scopes each counts (a scope active on 3 days is 3)."""
    bytes_per_scope: float
    """Day and hour hashes together, over distinct scopes."""
    bytes_per_scope_day: float
    """Day hashes over scope-days: what a day of one active prefix or IP costs."""
    blocks_bytes: int


class RunResult(msgspec.Struct, kw_only=True):
    scenario: Scenario
    started_at: str
    seconds: float
    redis_version: str
    policy: dict[str, object]
    legit_volume: dict[str, int]
    """Legitimate verifications per country on an ordinary weekday (after scale)."""
    sessions: int
    shapes: list[ShapeResult]
    memory: MemoryFigures | None = None

    def shape(self, key: str) -> ShapeResult:
        return next(s for s in self.shapes if s.key == key)


def save(result: RunResult, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(msgspec.json.format(msgspec.json.encode(result), indent=2) + b"\n")


def load(path: Path) -> RunResult:
    return msgspec.json.decode(path.read_bytes(), type=RunResult)
