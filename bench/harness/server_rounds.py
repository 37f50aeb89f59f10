"""`--server both`: the framework ceiling, logins, GET and DLR under each ASGI server, in rounds
of shorter phases whose order alternates, every server's processes up all along."""

from __future__ import annotations

from pathlib import Path

from harness import log
from harness.loader import Loader, LoadOptions
from harness.results import ServerRound, ServerRounds
from harness.servers import start_trivial, wait_provider_idle
from tests.support.processes import Processes


def compare_servers(
    procs: Processes,
    loader: Loader,
    services: dict[str, str],
    scratch: Path,
    *,
    rounds: int,
    workers: int,
    duration: float,
    warmup: float,
    concurrency: int,
    http_concurrency: int,
) -> ServerRounds:
    """The machine is shared and its speed drifts, so a server is compared with the others
    minutes apart at most, and a burst of foreign load hits one round, not one server (ABBA...).
    `services` maps each server to its service's URL; the first is the primary."""
    servers = list(services)
    d = max(2.0, duration / 2)
    w = min(warmup, 1.0)
    trivial = {s: start_trivial(procs, f"trivial_app-{s}", s, workers) for s in servers}
    quiet_wait, loader.quiet_wait = loader.quiet_wait, min(loader.quiet_wait, 5.0)
    done: list[dict[str, ServerRound]] = []
    try:
        for r in range(rounds):
            order = servers if r % 2 == 0 else servers[::-1]
            log(f"servers compared, round {r + 1}/{rounds}: {' then '.join(order)}")
            ceiling = {}
            for s in order:
                ceiling[s] = loader.run(
                    "trivial",
                    concurrency=http_concurrency,
                    duration=d,
                    warmup=w,
                    options=LoadOptions(url=trivial[s]),
                )
                ceiling[s].process = f"trivial_app-{s}"
            logins = {}
            for s in order:
                ids = scratch / f"ids-{s}-{r}.txt"
                logins[s] = loader.run(
                    "login",
                    concurrency=concurrency,
                    duration=d,
                    warmup=w,
                    options=LoadOptions(url=services[s], ids_out=ids, probe=10.0),
                )
                wait_provider_idle(loader.provider_url)
                if not ids.exists() or not ids.read_text(encoding="utf-8").strip():
                    raise RuntimeError(f"the login run under {s} approved no verification")
            reads = {}
            for scenario in ("get", "dlr"):
                for s in order:
                    reads[scenario, s] = loader.run(
                        scenario,
                        concurrency=http_concurrency,
                        duration=d,
                        warmup=w,
                        options=LoadOptions(url=services[s], ids_file=scratch / f"ids-{s}-{r}.txt"),
                    )
                wait_provider_idle(loader.provider_url)
            result = {}
            for s in servers:
                process = "service" if s == servers[0] else f"service-{s}"
                for phase in (logins[s], reads["get", s], reads["dlr", s]):
                    phase.process = process
                result[s] = ServerRound(
                    framework_ceiling=ceiling[s],
                    login=logins[s],
                    get=reads["get", s],
                    dlr=reads["dlr", s],
                )
            done.append(result)
    finally:
        loader.quiet_wait = quiet_wait
        for s in servers:
            procs.stop(f"trivial_app-{s}")
    return ServerRounds(servers=servers, duration_s=d, warmup_s=w, rounds=done)
