"""The table of `--server both`: every server side by side, medians over the rounds, with the
ratio of each to the first, also per round (the pairs ran minutes apart at most)."""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence

from harness.results import Phase, ServerRound, ServerRounds

COMPARED = {
    "framework_ceiling": ("framework ceiling", "req/s", "request"),
    "get": ("GET /otp/{id}", "req/s", "request"),
    "dlr": ("DLR ingestion", "reports/s", "request"),
    "login": ("login round trips", "logins/s", "login"),
}
"""Phases measured under every server: key, label, unit, the call whose p99 shows."""


def fmt(value: object, digits: int = 1) -> str:
    """A table cell: thousands separated, MISSING for no figure."""
    if value is None:
        return "MISSING"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def median(values: Sequence[float | None]) -> float | None:
    """The median of the values, None when one is missing (a failed phase): no figure."""
    present = [v for v in values if v is not None]
    if not values or len(present) < len(values):
        return None
    return round(statistics.median(present), 3)


def phase_of(server_round: ServerRound, key: str) -> Phase:
    phase: Phase = getattr(server_round, key)
    return phase


def server_cpu_ms(phase: Phase) -> float | None:
    """CPU ms per request of the server under test, all its threads (event loop, argon2 pool,
    granian's Rust runtime): its processes are counted under the phase's `process` name."""
    name = phase.process
    parts = [v for k, v in phase.cpu_ms_per_op.items() if k == name or k.startswith(f"{name} ")]
    return round(sum(parts), 3) if parts else None


def busiest_worker_pct(phase: Phase) -> float | None:
    """The busiest service process' share of the service's CPU (50 % = two workers evenly
    loaded): how the server spread the load generator's connections over its workers."""
    per_pid = phase.cpu.service_process_cpu_s
    return round(100 * max(per_pid) / sum(per_pid), 1) if sum(per_pid) > 0 else None


def _ratio(a: float | None, b: float | None) -> str:
    return f"{a / b:.3f}" if a is not None and b else "MISSING"


def _p99_of(call: str) -> Callable[[Phase], float | None]:
    return lambda phase: phase.p99(call)


def _rows(key: str, unit: str, call: str) -> list[tuple[str, Callable[[Phase], float | None]]]:
    calls = [call, *(("start", "verify", "healthz") if key == "login" else ())]
    rows: list[tuple[str, Callable[[Phase], float | None]]] = [(unit, lambda ph: ph.rps)]
    rows += [(f"p99 {c}", _p99_of(c)) for c in calls]
    rows.append(("server CPU ms", server_cpu_ms))
    if key != "framework_ceiling":
        rows.append(("busiest worker %", busiest_worker_pct))
    rows.append(("foreign CPU %", lambda ph: ph.cpu.foreign_cpu_pct))
    return rows


def comparison(compared: ServerRounds) -> str:
    names = compared.servers
    rounds = compared.rounds
    first = names[0]
    head = ["phase", "figure", *names, *(f"{n} / {first}" for n in names[1:])]
    lines = [
        (
            f"ASGI servers compared: {len(rounds)} round{'s' if len(rounds) != 1 else ''} of"
            f" {compared.duration_s:g} s phases"
            f" after {compared.warmup_s:g} s warm-up, order alternating ({' / '.join(names)},"
            " then reversed), every server up all along; medians over the rounds; p99 in ms;"
            " server CPU: ms per request, all the server's processes and threads; every other"
            f" figure above ran under {first}."
        ),
        "",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * 2 + "---:|" * (len(head) - 2),
    ]
    for key, (label, unit, call) in COMPARED.items():
        for i, (figure, read) in enumerate(_rows(key, unit, call)):
            per_round = {n: [read(phase_of(r[n], key)) for r in rounds] for n in names}
            values = [median(per_round[n]) for n in names]
            cells = [fmt(v, 3 if figure == "server CPU ms" else 1) for v in values]
            ratios = [
                "" if figure.startswith(("foreign", "busiest")) else _ratio(v, values[0])
                for v in values[1:]
            ]
            lines.append(f"| {label if i == 0 else ''} | {figure} | {' | '.join(cells + ratios)} |")
            if i == 0:
                by_round = [
                    ", ".join(
                        _ratio(a, b) for a, b in zip(per_round[n], per_round[first], strict=True)
                    )
                    for n in names[1:]
                ]
                lines.append(
                    f"|  | {unit}, each round | "
                    + " | ".join(", ".join(fmt(v) for v in per_round[n]) for n in names)
                    + f" | {' | '.join(by_round)} |"
                )
    return "\n".join(lines)


def round_medians(compared: ServerRounds | None) -> dict[str, float | None]:
    """`<server>_<phase>_rps`: each server's median rate over the rounds, per compared phase."""
    if compared is None:
        return {}
    return {
        f"{server}_{key}_rps": median([phase_of(r[server], key).rps for r in compared.rounds])
        for server in compared.servers
        for key in COMPARED
    }
