"""From a RunResult to what a reader sees: the figures, the targets (which never change the exit
status), the markdown table printed and saved, and the block of bench/README.md it replaces."""

from __future__ import annotations

from pathlib import Path

from harness.comparison import comparison, fmt, round_medians
from harness.overload_report import overload_rows
from harness.results import Figures, Phase, RunResult, TargetRow

README_START = "<!-- bench-table:start -->"
README_END = "<!-- bench-table:end -->"


def _rps(phase: Phase | None) -> float | None:
    return phase.rps if phase else None


def _p50(phase: Phase | None, call: str) -> float | None:
    return phase.p50(call) if phase else None


def _p99(phase: Phase | None, call: str) -> float | None:
    return phase.p99(call) if phase else None


def figures(out: RunResult) -> Figures:
    login, half = out.login, out.login_half_load
    per_login = login.cpu_ms_per_op if login else {}
    argon2_ms = per_login.get("service threads (argon2)")
    small, again = _rps(out.login_pending_small), _rps(out.login_pending_small_again)
    rc, pend, over = out.redis_commands, out.pending, out.overload
    hash_ms = [r.hash_ms_one_core for r in out.argon2_runs if r.hash_ms_one_core]
    return Figures(
        argon2_hashes_per_s=out.argon2.hashes_per_s if out.argon2 else None,
        argon2_hash_ms=min(hash_ms) if hash_ms else None,
        framework_ceiling_rps=_rps(out.framework_ceiling),
        login_per_s=_rps(login),
        login_start_p50_ms=_p50(login, "start"),
        login_start_p99_ms=_p99(login, "start"),
        login_verify_p50_ms=_p50(login, "verify"),
        login_verify_p99_ms=_p99(login, "verify"),
        login_sms_p50_ms=_p50(login, "inbox"),
        login_sms_p99_ms=_p99(login, "inbox"),
        healthz_under_load_p99_ms=_p99(login, "healthz"),
        half_load_rate=half.load.rate if half else None,
        half_load_login_per_s=_rps(half),
        half_load_start_p50_ms=_p50(half, "start"),
        half_load_start_p99_ms=_p99(half, "start"),
        half_load_verify_p50_ms=_p50(half, "verify"),
        half_load_verify_p99_ms=_p99(half, "verify"),
        cpu_ms_per_login=round(sum(per_login.values()), 2) if per_login else None,
        service_loop_ms_per_login=per_login.get("service event loop"),
        argon2_cpu_share_login=(
            round(argon2_ms / sum(per_login.values()), 3) if argon2_ms else None
        ),
        get_rps=_rps(out.get),
        dlr_rps=_rps(out.dlr),
        overload_offered_per_s=over.offered_per_s if over else None,
        overload_goodput_per_s=(over.goodput_per_s or None) if over else None,
        overload_answer_p99_ms=over.answer_latency.p99_ms if over else None,
        overload_answer_max_ms=over.answer_latency.max_ms if over else None,
        overload_accepted_start_p99_ms=over.accepted_start_latency.p99_ms if over else None,
        overload_time_to_provider_p99_ms=over.time_to_provider.p99_ms if over else None,
        overload_service_unavailable=over.service_unavailable if over else None,
        overload_shed_share=over.shed_share if over else None,
        overload_service_cpu_ms_per_login=over.service_cpu_ms_per_login if over else None,
        redis_round_trips_per_start=rc.start.round_trips_per_call if rc else None,
        redis_round_trips_per_verify=rc.verify.round_trips_per_call if rc else None,
        redis_commands_per_start=rc.start.commands_per_call if rc else None,
        redis_commands_per_verify=rc.verify.commands_per_call if rc else None,
        bytes_per_pending=pend.bytes_per_pending if pend else None,
        pending_insert_s=pend.insert_seconds_total if pend else None,
        login_pending_small_per_s=round((small + again) / 2, 2) if small and again else None,
        login_pending_big_per_s=_rps(out.login_pending_big),
        server_rounds_rps=round_medians(out.server_rounds),
    )


def cpu_note(phase: Phase | None) -> str:
    """CPU ms per operation by component, largest first."""
    per = phase.cpu_ms_per_op if phase else {}
    if not per:
        return "MISSING"
    ordered = sorted(per.items(), key=lambda kv: -kv[1])
    return ", ".join(f"{k} {v:.3g}" for k, v in ordered if v >= 0.001) + " ms"


def _shed(phase: Phase | None) -> str:
    """The 503 answers of a login run, which the closed loop's users count as failed logins."""
    errors = phase.load.errors if phase else {}
    starts = errors.get("start", {}).get("503", 0)
    verifies = errors.get("verify", {}).get("503", 0)
    return f"; 503 to {starts:,} starts and {verifies:,} verifies" if starts or verifies else ""


def _p50_99(phase: Phase | None, call: str) -> str:
    return f"{fmt(_p50(phase, call))}/{fmt(_p99(phase, call))} ms"


def _scripts(top_level: dict[str, float] | None) -> str:
    if not top_level:
        return "MISSING"
    return (
        " + ".join(
            f"{k.removeprefix('EVALSHA ')} {v:g}"
            for k, v in top_level.items()
            if not k.startswith("EVALSHA record_delivery")
        )
        or "-"
    )


def _rows(out: RunResult, f: Figures) -> list[tuple[str, str, str]]:
    s, pend, rc = out.settings, out.pending, out.redis_commands
    login, half = out.login, out.login_half_load
    runs = " / ".join(fmt(r.hashes_per_s) for r in out.argon2_runs)
    all_cores = out.argon2.hash_ms_all_cores if out.argon2 else None
    return [
        (
            "argon2 bound (hashes/s, all cores)",
            fmt(f.argon2_hashes_per_s),
            (
                f"{fmt(f.argon2_hash_ms, 2)} ms per hash on one core (best run),"
                f" {fmt(all_cores, 2)} ms with all cores hashing; runs at start / end: {runs}"
            ),
        ),
        (
            "framework ceiling (req/s)",
            fmt(f.framework_ceiling_rps),
            "trivial Litestar GET, same server settings; CPU per request: "
            + cpu_note(out.framework_ceiling),
        ),
        (
            f"login round trips/s (c={s.concurrency})",
            fmt(f.login_per_s),
            (
                f"start {_p50_99(login, 'start')}; SMS wait {_p50_99(login, 'inbox')}; verify "
                f"{_p50_99(login, 'verify')}; /healthz meanwhile {_p50_99(login, 'healthz')}"
                + _shed(login)
            ),
        ),
        (
            f"login at 50 % load (open loop, {fmt(f.half_load_rate)}/s offered)",
            fmt(f.half_load_login_per_s),
            f"start {_p50_99(half, 'start')}; verify {_p50_99(half, 'verify')}" + _shed(half),
        ),
        (
            "CPU per login round trip (ms, all processes)",
            fmt(f.cpu_ms_per_login),
            (
                f"{cpu_note(login)}; CPU s per service process:"
                f" {login.cpu.service_process_cpu_s if login else []}; RSS after the login run"
                f" (MiB, supervisor and workers): {login.service_rss_mib if login else []}"
            ),
        ),
        (
            "share of all CPU spent hashing during the login run",
            fmt(f.argon2_cpu_share_login, 3),
            (
                "the login target without the machine's speed drift between phases: "
                "a login rate of 85 % of half the argon2 bound needs this >= 0.85"
            ),
        ),
        (
            "GET /otp/{id} (req/s)",
            fmt(f.get_rps),
            f"{_p50_99(out.get, 'request')}; CPU per request: {cpu_note(out.get)}",
        ),
        (
            "DLR ingestion (reports/s)",
            fmt(f.dlr_rps),
            f"one report per POST; {_p50_99(out.dlr, 'request')}; CPU per report: "
            + cpu_note(out.dlr),
        ),
        *overload_rows(out.overload, f),
        (
            "Redis round trips per start",
            fmt(f.redis_round_trips_per_start, 2),
            (
                f"server socket reads; {_scripts(rc.start.top_level if rc else None)}; + "
                f"{fmt(rc.start.background_round_trips_per_call if rc else None, 2)} after the "
                f"response (lane: submitted); {fmt(f.redis_commands_per_start)} commands "
                "incl. inside scripts"
            ),
        ),
        (
            "Redis round trips per verify",
            fmt(f.redis_round_trips_per_verify, 2),
            (
                f"{_scripts(rc.verify.top_level if rc else None)}; "
                f"{fmt(f.redis_commands_per_verify)} commands incl. inside scripts"
            ),
        ),
        (
            "Redis memory per pending verification (bytes)",
            fmt(f.bytes_per_pending),
            (
                f"used_memory delta over {fmt(pend.memory_sample if pend else None)}; "
                f"{fmt(pend.keys_per_pending if pend else None, 2)} keys each"
            ),
        ),
        (
            f"login/s with {fmt(pend.small if pend else None)} pending",
            fmt(f.login_pending_small_per_s),
            (
                "mean of the runs before and after the big one:"
                f" {fmt(_rps(out.login_pending_small))} /"
                f" {fmt(_rps(out.login_pending_small_again))};"
                f" verify {_p50_99(out.login_pending_small, 'verify')}"
                + _shed(out.login_pending_small)
            ),
        ),
        (
            f"login/s with {fmt(pend.pending_total if pend else None)} pending",
            fmt(f.login_pending_big_per_s),
            (
                f"verify {_p50_99(out.login_pending_big, 'verify')}; inserted in "
                f"{fmt(f.pending_insert_s)} s (pipelined EVALSHA send_commit); Redis "
                f"{fmt(pend.used_memory_mib_after if pend else None)} MiB"
                + _shed(out.login_pending_big)
            ),
        ),
    ]


def table(out: RunResult, f: Figures, rows: list[TargetRow]) -> str:
    m, s = out.machine, out.settings
    threads = (
        f"OTP_HASH_THREADS={s.hash_threads}"
        if s.hash_threads is not None
        else f"OTP_HASH_THREADS unset (the service's default: the CPU count, {m.nproc})"
    )
    lines = [
        (
            f"Machine: {m.nproc} x {m.cpu_model}, {m.memory_gib} GiB, Linux {m.kernel}, Python"
            f" {m.python}, {m.redis or '?'}"
        ),
        (
            f"Run: {out.mode}, {out.started_at}; service: OTP_SERVER={s.server}, OTP_WORKERS="
            f"{s.workers} ({fmt(s.service_processes)} processes), {threads}, argon2 profile"
            f" {s.argon2_profile}; {s.duration_s:g} s per phase after {s.warmup_s:g} s warm-up;"
            f" logins at concurrency {s.concurrency}, other HTTP at {s.http_concurrency}; overload"
            f" {s.overload_multiple:g} x the login rate for {s.overload_duration_s:g} s"
        ),
        "",
        "| figure | value | notes |",
        "|---|---:|---|",
        *(f"| {a} | {b} | {c} |" for a, b, c in _rows(out, f)),
        "",
        "| target | measured | reference | ratio | required | met |",
        "|---|---:|---:|---:|---|---|",
    ]
    for row in rows:
        met = "MISSING" if row.met is None else ("met" if row.met else "**not met**")
        ratio = "-" if row.required == "= 0" else fmt(row.ratio, 3)
        lines.append(
            f"| {row.target} | {fmt(row.measured, 2)} | {fmt(row.reference, 2)} | "
            f"{ratio} | {row.required} | {met} |"
        )
    foreign = {"argon2": out.argon2.foreign_cpu_pct} if out.argon2 else {}
    foreign |= {k: p.cpu.foreign_cpu_pct for k, p in out.phases().items()}
    errors = {k: p.load.errors for k, p in out.phases().items() if p.load.errors}
    errors.pop("overload", None)  # its answers are the overload rows above
    lines += ["", f"CPU used by other processes on the machine during each phase (%): {foreign}"]
    if errors:
        lines.append(f"Errors by call and status: {errors}")
    if out.failure:
        lines.append(f"Run failed: {out.failure}")
    if out.server_rounds is not None:
        lines += ["", comparison(out.server_rounds)]
    lines += ["", f"Whole run: {out.elapsed_s:g} s."]
    return "\n".join(lines)


def update_readme(readme: Path, text: str) -> None:
    """Replace the block between the markers of `readme` (appended when it has none)."""
    content = readme.read_text(encoding="utf-8") if readme.exists() else ""
    block = f"{README_START}\n{text}\n{README_END}"
    if README_START in content and README_END in content:
        head, _, rest = content.partition(README_START)
        _, _, tail = rest.partition(README_END)
        content = head + block + tail
    else:
        content += ("\n" if content else "") + block + "\n"
    readme.write_text(content, encoding="utf-8")
