"""The simulation: one timeline of legitimate logins, played at once for several tenants (one
per attack shape, plus a baseline with no attack) on a real Redis through the guard's real
code: FraudGuard.query, the fraud_check script (store/fraud.py check_call) and approvals
settled by RedisFraud. Time is a simulated clock handed to the guard; nothing sleeps.

Every tenant sees the same legitimate users at the same moments, so the tenants' calls of one
moment go to Redis in one pipeline; each tenant's own verdicts decide what its users do next
(a refused user gets no code, so enters none)."""

from __future__ import annotations

import hashlib
import random
import time
from dataclasses import dataclass, field

import msgspec

from otpservice.domain.fraud import FraudPolicy
from otpservice.domain.phone import Destination, parse_destination
from otpservice.domain.policy import Policy
from otpservice.ids import Identifiers
from otpservice.settings import Secret, Tenant
from otpservice.store.client import ScriptCall, StoreClient
from otpservice.store.fraud import RedisFraud, check_call, decode_verdict
from otpservice.usecases.fraud import FraudGuard
from otpservice.usecases.ports import FraudQuery

from .attacks import SHAPES, AttackRequest, Shape
from .results import AttackFigures, LegitFigures, Scenario, ShapeResult
from .traffic import COUNTRIES, DAY_MS, Session, legit_sessions

PEPPER = Secret(b"pumping-simulator-pepper-32bytes")
BASELINE = Shape(key="-", name="no attack (baseline)", description="Legitimate traffic alone.")

_START, _RESEND, _APPROVE, _ATTACK, _ATTACK_APPROVE = 0, 1, 2, 3, 4


class SimClock:
    """Milliseconds since the epoch, moved only by the simulation."""

    def __init__(self, now_ms: int) -> None:
        self.now_ms = now_ms

    def __call__(self) -> int:
        return self.now_ms


def first_monday_ahead() -> int:
    """The start of the simulated days: the next Monday, 00:00 UTC (every run sees the same
    weekdays). The scripts' TTLs are absolute times (PEXPIREAT) on the simulated clock, so it
    must not run behind the server's: its keys would expire at once."""
    day = time.time_ns() // 1_000_000 // DAY_MS + 1
    while (day + 3) % 7:  # 1970-01-01 was a Thursday
        day += 1
    return day * DAY_MS


@dataclass
class TenantRun:
    tenant: Tenant
    shape: Shape
    attack: list[AttackRequest]
    legit: LegitFigures = field(default_factory=LegitFigures)
    legit_warmup: LegitFigures = field(default_factory=LegitFigures)
    figures: AttackFigures | None = None
    attack_counted: dict[int, FraudQuery] = field(default_factory=dict)
    """An attack request the guard let through, by index (for a bot that enters codes)."""
    counted: dict[int, FraudQuery] = field(default_factory=dict)
    """A session's first send as the guard counted it (absent: refused, or not yet)."""
    sends: dict[int, int] = field(default_factory=dict)
    """A session's sends that went out."""

    def result(self) -> ShapeResult:
        return ShapeResult(
            key=self.shape.key,
            name=self.shape.name,
            description=self.shape.description,
            in_issue=self.shape.in_issue,
            attack=self.figures,
            legit=self.legit,
            legit_warmup=self.legit_warmup,
        )


def tenant(name: str, fraud: FraudPolicy) -> Tenant:
    """A tenant with the default policy but for the fraud guard's settings (`fraud`)."""
    return Tenant(
        name=name,
        api_key_digests=(hashlib.sha256(name.encode()).digest(),),
        sender="Acme",
        app_name="Acme",
        policy=Policy(fraud=fraud),
    )


class Simulation:
    def __init__(self, store: StoreClient, scenario: Scenario, run_id: str) -> None:
        self.store = store
        self.scenario = scenario
        self.start_ms = first_monday_ahead()
        self.measured_ms = self.start_ms + scenario.warmup_days * DAY_MS
        self.end_ms = self.measured_ms + scenario.measured_days * DAY_MS
        self.clock = SimClock(self.start_ms)
        self.fraud = RedisFraud(store, flush_seconds=0)
        self.guard = FraudGuard(self.fraud, Identifiers(PEPPER), clock=self.clock)
        days = scenario.warmup_days + scenario.measured_days
        self.sessions = legit_sessions(
            self.start_ms, days, scenario.scale, scenario.seed, COUNTRIES
        )
        self.destinations: dict[str, Destination] = {}
        self.runs = [TenantRun(tenant(f"pump-{run_id}-base", scenario.fraud), BASELINE, [])]
        for key in scenario.shapes:
            shape, build = SHAPES[key]
            rng = random.Random(f"attack:{scenario.seed}:{key}")
            digits = self.runs[0].tenant.policy.fraud.prefix_digits
            requests = build(self.measured_ms, scenario.measured_days, rng, digits)
            self.runs.append(
                TenantRun(tenant(f"pump-{run_id}-{key}", scenario.fraud), shape, requests)
            )

    def destination(self, e164: str) -> Destination:
        found = self.destinations.get(e164)
        if found is None:
            found = self.destinations[e164] = parse_destination(e164)
        return found

    def _timeline(self) -> list[tuple[int, int, int, int, int]]:
        """(at, order, kind, session or request index, tenant index), in time order."""
        events: list[tuple[int, int, int, int, int]] = []
        for s in self.sessions:
            events.append((s.start_ms, len(events), _START, s.sid, -1))
            if s.resend_ms:
                events.append((s.resend_ms, len(events), _RESEND, s.sid, -1))
            if s.approve_ms:
                events.append((s.approve_ms, len(events), _APPROVE, s.sid, -1))
        for lane, run in enumerate(self.runs):
            for index, request in enumerate(run.attack):
                events.append((request.at_ms, len(events), _ATTACK, index, lane))
                if request.enters_code_after_ms:
                    at = request.at_ms + request.enters_code_after_ms
                    events.append((at, len(events), _ATTACK_APPROVE, index, lane))
        events = [e for e in events if e[0] < self.end_ms]
        events.sort()
        return events

    async def run(self) -> list[ShapeResult]:
        pending_approvals = False
        for at, _, kind, index, lane in self._timeline():
            self.clock.now_ms = at
            if kind in {_APPROVE, _ATTACK_APPROVE}:
                if kind == _APPROVE:
                    await self._approve(self.sessions[index])
                else:
                    await self._attack_approve(self.runs[lane], index)
                pending_approvals = True
                continue
            if pending_approvals:
                # Approvals land before the next decision, as they would after a user's verify.
                await self.fraud.aclose()
                pending_approvals = False
            if kind == _START:
                await self._start(self.sessions[index])
            elif kind == _RESEND:
                await self._resend(self.sessions[index])
            else:
                await self._attack(self.runs[lane], index)
        await self.fraud.aclose()
        return [run.result() for run in self.runs]

    async def _checks(self, queries: list[FraudQuery]) -> list[str | None]:
        """The guard's decisions, one pipeline: None for a send let through, else the rule."""
        calls: list[ScriptCall] = [check_call(q) for q in queries]
        replies = await self.store.scripts("fraud_check", calls) if calls else []
        out: list[str | None] = []
        for raw in replies:
            verdict = decode_verdict(raw)
            out.append(None if verdict.verdict != "refuse" else verdict.rule)
        return out

    def _count_legit(self, run: TenantRun, region: str, refused_by: str | None) -> None:
        now = self.clock.now_ms
        if now >= self.measured_ms:
            run.legit.add(region, (now - self.measured_ms) // DAY_MS, refused_by)
        else:
            run.legit_warmup.add(region, (now - self.start_ms) // DAY_MS, refused_by)

    async def _start(self, session: Session) -> None:
        destination = self.destination(session.e164)
        asked: list[FraudQuery] = []
        for run in self.runs:
            query = self.guard.query(run.tenant, destination, session.ip)
            assert query is not None  # the guard is on (enforce) for every tenant
            asked.append(query)
        for run, query, refused_by in zip(self.runs, asked, await self._checks(asked), strict=True):
            self._count_legit(run, session.region, refused_by)
            if refused_by is None:
                run.counted[session.sid] = query
                run.sends[session.sid] = 1

    async def _resend(self, session: Session) -> None:
        """A resend is asked about without the IP, then counted under the first send's (as
        usecases/sending.py does)."""
        destination = self.destination(session.e164)
        runs = [run for run in self.runs if session.sid in run.counted]
        asked: list[FraudQuery] = []
        for run in runs:
            query = self.guard.query(run.tenant, destination, None)
            assert query is not None
            asked.append(msgspec.structs.replace(query, ip=run.counted[session.sid].ip))
        for run, refused_by in zip(runs, await self._checks(asked), strict=True):
            self._count_legit(run, session.region, refused_by)
            if refused_by is None:
                run.sends[session.sid] += 1

    async def _approve(self, session: Session) -> None:
        for run in self.runs:
            first = run.counted.pop(session.sid, None)
            if first is None:
                continue  # refused at the start: the user never had a code
            sends = run.sends.pop(session.sid)
            await self.guard.approved(
                run.tenant.name, first.country, first.prefix, first.ip, sends=sends
            )

    async def _attack(self, run: TenantRun, index: int) -> None:
        request = run.attack[index]
        query = self.guard.query(run.tenant, self.destination(request.e164), request.ip)
        assert query is not None
        (refused_by,) = await self._checks([query])
        figures = run.figures = run.figures or AttackFigures(
            sent_by_day=[0] * self.scenario.measured_days
        )
        figures.sends.add(refused_by)
        if refused_by is None:
            run.attack_counted[index] = query
            figures.sent_by_day[(request.at_ms - self.measured_ms) // DAY_MS] += 1
            if not figures.first_refusal_rule:
                figures.sent_before_first_refusal += 1
        elif not figures.first_refusal_rule:
            figures.first_refusal_rule = refused_by
            figures.first_refusal_after_s = (request.at_ms - run.attack[0].at_ms) / 1000

    async def _attack_approve(self, run: TenantRun, index: int) -> None:
        sent = run.attack_counted.pop(index, None)
        if sent is not None:
            await self.guard.approved(run.tenant.name, sent.country, sent.prefix, sent.ip, sends=1)
