"""The targets a run is held to: each figure against its reference from the same run (half the
argon2 bound, the framework ceiling, the argon2 time...). A missed target never changes the exit
status: it is a finding, not a failure of the benchmark."""

from __future__ import annotations

from dataclasses import dataclass

from harness.results import Figures, TargetRow


@dataclass(frozen=True)
class Target:
    """measured / reference, required to be >= (sense "ge") or <= ("le") `factor`; sense
    "zero": measured must be 0 (no ratio)."""

    name: str
    measured: float | None
    reference: float | None
    factor: float
    sense: str

    def row(self) -> TargetRow:
        if self.sense == "zero":
            met = None if self.measured is None else self.measured == 0
            return TargetRow(
                target=self.name,
                measured=self.measured,
                reference=0,
                ratio=None,
                required="= 0",
                met=met,
            )
        ratio = (
            round(self.measured / self.reference, 3)
            if self.measured is not None and self.reference
            else None
        )
        if ratio is None:
            met = None
        else:
            met = ratio >= self.factor if self.sense == "ge" else ratio <= self.factor
        sign = ">=" if self.sense == "ge" else "<="
        return TargetRow(
            target=self.name,
            measured=self.measured,
            reference=self.reference,
            ratio=ratio,
            required=f"{sign} {self.factor:g}",
            met=met,
        )


def targets(f: Figures) -> list[TargetRow]:
    bound, h, ceiling = f.argon2_hashes_per_s, f.argon2_hash_ms, f.framework_ceiling_rps
    rows = [
        Target(
            "login round trips >= 85 % of half the argon2 bound",
            f.login_per_s,
            bound / 2 if bound else None,
            0.85,
            "ge",
        ),
        Target(
            "service's own CPU per login besides hashing <= 3 ms",
            f.service_loop_ms_per_login,
            3,
            1.0,
            "le",
        ),
        Target("GET /otp/{id} >= 35 % of the framework ceiling", f.get_rps, ceiling, 0.35, "ge"),
        Target("DLR ingestion >= 35 % of the framework ceiling", f.dlr_rps, ceiling, 0.35, "ge"),
        Target("GET /otp/{id} >= 50 % of the framework ceiling", f.get_rps, ceiling, 0.5, "ge"),
        Target("DLR ingestion >= 50 % of the framework ceiling", f.dlr_rps, ceiling, 0.5, "ge"),
        Target(
            "p99 verify at 50 % load <= 3 x argon2 + 20 ms",
            f.half_load_verify_p99_ms,
            3 * h + 20 if h else None,
            1.0,
            "le",
        ),
        *overload_targets(f, h),
        Target("Redis round trips per start <= 2", f.redis_round_trips_per_start, 2, 1.0, "le"),
        Target("Redis round trips per verify <= 2", f.redis_round_trips_per_verify, 2, 1.0, "le"),
        Target(
            "Redis memory per pending verification <= 1 KiB", f.bytes_per_pending, 1024, 1.0, "le"
        ),
        Target(
            "login with big pending >= 90 % of with small",
            f.login_pending_big_per_s,
            f.login_pending_small_per_s,
            0.9,
            "ge",
        ),
    ]
    return [t.row() for t in rows]


def overload_targets(f: Figures, hash_ms: float | None) -> list[Target]:
    """Under 8 x the load the machine serves: fast answers (a success or a shed), most of the
    rate still served, accepted starts as fast as without overload, SMS out in time, and Redis
    never reported down while it is healthy."""
    return [
        Target(
            "overload: every answer within 1 s (max)", f.overload_answer_max_ms, 1000, 1.0, "le"
        ),
        Target(
            "overload: every answer within 1 s (p99)", f.overload_answer_p99_ms, 1000, 1.0, "le"
        ),
        Target(
            "overload: goodput >= 90 % of the login rate at c=16",
            f.overload_goodput_per_s,
            f.login_per_s,
            0.9,
            "ge",
        ),
        Target(
            "overload: accepted-start p99 <= 3 x argon2 + 100 ms",
            f.overload_accepted_start_p99_ms,
            3 * hash_ms + 100 if hash_ms else None,
            1.0,
            "le",
        ),
        Target(
            "overload: start answer to SMS at the provider p99 <= 250 ms",
            f.overload_time_to_provider_p99_ms,
            250,
            1.0,
            "le",
        ),
        Target(
            "overload: no service_unavailable answer while Redis is healthy",
            f.overload_service_unavailable,
            0,
            0.0,
            "zero",
        ),
    ]
