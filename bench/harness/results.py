"""Every result of a benchmark run as a typed msgspec Struct; the results JSON is `RunResult`.

A run fills a `RunResult` phase by phase, so a failure still leaves what was measured; `--render`
decodes the same JSON back into it. Figures and targets are derived from it (report.py).
"""

from __future__ import annotations

from pathlib import Path

import msgspec


class CallStats(msgspec.Struct, kw_only=True):
    """Latencies of one kind of call in a load run (ms), counted inside the measured window."""

    count: int
    ok: int
    p50_ms: float | None
    p99_ms: float | None
    mean_ms: float | None
    max_ms: float | None


class LoadSummary(msgspec.Struct, kw_only=True):
    """What bench/load.py prints: one load run, seen from the client."""

    scenario: str
    concurrency: int
    rate: float
    duration_s: float
    count: int
    """Successful main calls (logins, or requests) that ended in the window."""
    rps: float
    calls: dict[str, CallStats]
    errors: dict[str, dict[str, int]]
    """Per call, the answers that were not the expected status, by status (or transport error)."""
    dropped: int
    max_in_flight: int = 0
    """Open loop: the most logins in flight at once."""
    connections_opened: int = 0
    schedule_lag: CallStats | None = None
    """Open loop: how late each login began after its scheduled time (the generator's lag)."""

    def call(self, name: str) -> CallStats | None:
        return self.calls.get(name)


class CpuUse(msgspec.Struct, kw_only=True):
    """The machine's CPU during one phase (cpu.py)."""

    machine_busy_pct: float
    foreign_cpu_pct: float
    """Share of all cores busy with processes that are not the benchmark's."""
    cpu_s: dict[str, float]
    """CPU seconds by component: `service event loop`, `service threads (argon2)`, `redis`..."""
    service_process_cpu_s: list[float]
    """Per service process, busiest first: how evenly the connections spread over workers."""


class Phase(msgspec.Struct, kw_only=True):
    """One metered load run."""

    load: LoadSummary
    cpu: CpuUse
    cpu_ms_per_op: dict[str, float]
    """CPU ms by component per successful main call (warm-up included in the CPU and the count)."""
    service_rss_mib: list[float]
    quiet_wait_s: float
    foreign_cpu_pct_before: float
    process: str = ""
    """Under `--server both`: the component name the measured server's CPU is counted under."""

    @property
    def rps(self) -> float | None:
        """The rate, or None when nothing succeeded (no figure)."""
        return self.load.rps or None

    def p50(self, call: str) -> float | None:
        stats = self.load.call(call)
        return stats.p50_ms if stats else None

    def p99(self, call: str) -> float | None:
        stats = self.load.call(call)
        return stats.p99_ms if stats else None


class Argon2Run(msgspec.Struct, kw_only=True):
    """Hashes per second with every core hashing, and the time of one hash on one core."""

    profile: str
    processes: int
    hashes_per_s: float
    hash_ms_one_core: float
    hash_ms_all_cores: float
    login_bound_per_s: float
    when: str = ""
    foreign_cpu_pct: float = 0.0
    quiet_wait_s: float = 0.0


class RedisCallCounts(msgspec.Struct, kw_only=True):
    """Redis traffic of one operation (start or verify), per call."""

    round_trips_per_call: float
    commands_on_request_path_per_call: float
    background_round_trips_per_call: float
    lane_timer_round_trips: int
    top_level: dict[str, float]
    in_script: dict[str, float]
    connection_setup_total: dict[str, int]
    commandstats_per_call: dict[str, float]
    commands_per_call: float


class RedisCounts(msgspec.Struct, kw_only=True):
    calls: int
    start: RedisCallCounts
    verify: RedisCallCounts


class Insert(msgspec.Struct, kw_only=True):
    """One bulk insert of pending verifications (bench/pending.py)."""

    inserted: int
    failed: int
    seconds: float


class Pending(msgspec.Struct, kw_only=True):
    """Redis memory per pending verification, and the inserts around the big login run."""

    small: int
    memory_sample: int
    big: int
    insert_small: Insert | None = None
    keys_after_small: int = 0
    insert_memory_sample: Insert | None = None
    bytes_per_pending: float | None = None
    keys_per_pending: float | None = None
    insert_rest: Insert | None = None
    pending_total: int = 0
    insert_seconds_total: float | None = None
    used_memory_mib_after: float | None = None
    insert_small_again: Insert | None = None


class ServerRound(msgspec.Struct, kw_only=True):
    """One server's phases in one round of `--server both`."""

    framework_ceiling: Phase
    login: Phase
    get: Phase
    dlr: Phase


class ServerRounds(msgspec.Struct, kw_only=True):
    servers: list[str]
    duration_s: float
    warmup_s: float
    rounds: list[dict[str, ServerRound]]


class LatencyStats(msgspec.Struct, kw_only=True):
    """A latency distribution (ms); None when it had no sample."""

    count: int
    p50_ms: float | None
    p99_ms: float | None
    max_ms: float | None


class Overload(msgspec.Struct, kw_only=True):
    """The overload phase: open-loop logins offered at a multiple of the rate the machine
    serves; every request to the service in the window, and every accepted start's SMS."""

    reference_login_per_s: float
    """The closed-loop login rate (concurrency 16) of the same run."""
    multiple: float
    offered_per_s: float
    arrivals: int
    """Logins scheduled in the measured window."""
    window_s: float
    completed: int
    """Logins approved (verify answered valid) that ended in the window."""
    goodput_per_s: float
    answers: int
    """Requests to the service (start and verify) of the window's logins that got an answer."""
    by_answer: dict[str, dict[str, int]]
    """Per call (start, verify): answers by `<status>` or `<status> <problem code>`, and
    transport failures (`timeout`, `ConnectionResetError`...)."""
    overloaded: int
    service_unavailable: int
    other_non_2xx: int
    no_answer: int
    overloaded_without_retry_after: int
    shed_share: float
    """Overloaded answers over all answers."""
    starts_shed_share: float
    verifies_shed_share: float
    answer_latency: LatencyStats
    """Every answer, success or shed."""
    shed_latency: LatencyStats
    accepted_start_latency: LatencyStats
    verify_ok_latency: LatencyStats
    no_answer_max_ms: float | None
    time_to_provider: LatencyStats
    """From each accepted start's answer to the provider receiving its SMS; a missing SMS
    counts with the time waited for it (a lower bound)."""
    sms_missing: int
    sms_waited_s: float
    schedule_lag: LatencyStats
    max_in_flight: int
    connections_opened: int
    generator_cpu_ms_per_arrival: float | None
    generator_cpu_pct_of_core: float | None
    """The load generator's CPU over the whole run (warm-up included), in % of one core."""
    service_cpu_ms_per_login: float | None
    service_shed_counter: dict[str, float]
    """otp_requests_shed_total by operation over the phase, as the service counted it."""
    service_loop_lag_max_ms: float | None
    """The worst otp_event_loop_lag_seconds sampled during the phase."""
    phase: Phase


class Machine(msgspec.Struct, kw_only=True):
    nproc: int
    cpu_model: str
    memory_gib: float | None
    kernel: str
    python: str
    redis: str = ""


class RunSettings(msgspec.Struct, kw_only=True):
    workers: int
    server: str
    servers: list[str]
    hash_threads: int | None
    """OTP_HASH_THREADS as passed; None: not set, the service's default (the CPU count)."""
    argon2_profile: str
    concurrency: int
    http_concurrency: int
    duration_s: float
    warmup_s: float
    overload_multiple: float
    overload_duration_s: float
    service_processes: int | None = None


class TargetRow(msgspec.Struct, kw_only=True):
    target: str
    measured: float | None
    reference: float | None
    ratio: float | None
    required: str
    met: bool | None


class Figures(msgspec.Struct, kw_only=True):
    """The run's headline numbers; the exit status is 0 only when none is None."""

    argon2_hashes_per_s: float | None
    argon2_hash_ms: float | None
    framework_ceiling_rps: float | None
    login_per_s: float | None
    login_start_p50_ms: float | None
    login_start_p99_ms: float | None
    login_verify_p50_ms: float | None
    login_verify_p99_ms: float | None
    login_sms_p50_ms: float | None
    login_sms_p99_ms: float | None
    healthz_under_load_p99_ms: float | None
    half_load_rate: float | None
    half_load_login_per_s: float | None
    half_load_start_p50_ms: float | None
    half_load_start_p99_ms: float | None
    half_load_verify_p50_ms: float | None
    half_load_verify_p99_ms: float | None
    cpu_ms_per_login: float | None
    service_loop_ms_per_login: float | None = None
    """The service's own CPU per login besides hashing: its event loops' CPU."""
    argon2_cpu_share_login: float | None
    get_rps: float | None
    dlr_rps: float | None
    overload_offered_per_s: float | None
    overload_goodput_per_s: float | None
    overload_answer_p99_ms: float | None
    overload_answer_max_ms: float | None
    overload_accepted_start_p99_ms: float | None
    overload_time_to_provider_p99_ms: float | None
    overload_service_unavailable: int | None
    overload_shed_share: float | None
    overload_service_cpu_ms_per_login: float | None
    redis_round_trips_per_start: float | None
    redis_round_trips_per_verify: float | None
    redis_commands_per_start: float | None
    redis_commands_per_verify: float | None
    bytes_per_pending: float | None
    pending_insert_s: float | None
    login_pending_small_per_s: float | None
    login_pending_big_per_s: float | None
    server_rounds_rps: dict[str, float | None] = msgspec.field(default_factory=dict)
    """`--server both`: `<server>_<phase>_rps`, medians over the rounds."""

    def missing(self) -> list[str]:
        values = msgspec.structs.asdict(self)
        rounds = values.pop("server_rounds_rps")
        return [k for k, v in values.items() if v is None] + [
            k for k, v in rounds.items() if v is None
        ]


class RunResult(msgspec.Struct, kw_only=True):
    """One run of bench/run.py; what a phase did not produce stays None."""

    mode: str
    machine: Machine
    settings: RunSettings
    started_at: str = ""
    argon2: Argon2Run | None = None
    """The better of the runs at the start and at the end: the bound."""
    argon2_runs: list[Argon2Run] = msgspec.field(default_factory=list)
    framework_ceiling: Phase | None = None
    server_rounds: ServerRounds | None = None
    login: Phase | None = None
    login_half_load: Phase | None = None
    get: Phase | None = None
    dlr: Phase | None = None
    overload: Overload | None = None
    redis_commands: RedisCounts | None = None
    login_pending_small: Phase | None = None
    pending: Pending | None = None
    login_pending_big: Phase | None = None
    login_pending_small_again: Phase | None = None
    fake_provider: dict[str, int] = msgspec.field(default_factory=dict)
    elapsed_s: float = 0.0
    failure: str | None = None
    figures: Figures | None = None
    targets: list[TargetRow] = msgspec.field(default_factory=list)

    def phases(self) -> dict[str, Phase]:
        """The metered load runs of the main sequence, by name, in the order they ran."""
        named = {
            "framework_ceiling": self.framework_ceiling,
            "login": self.login,
            "login_half_load": self.login_half_load,
            "get": self.get,
            "dlr": self.dlr,
            "overload": self.overload.phase if self.overload else None,
            "login_pending_small": self.login_pending_small,
            "login_pending_big": self.login_pending_big,
            "login_pending_small_again": self.login_pending_small_again,
        }
        return {k: v for k, v in named.items() if v is not None}


def save(result: RunResult, path: Path) -> None:
    path.write_bytes(msgspec.json.format(msgspec.json.encode(result), indent=2) + b"\n")


def load(path: Path) -> RunResult:
    return msgspec.json.decode(path.read_bytes(), type=RunResult)
