"""Load generator for the benchmark: a separate process, printing one JSON object on stdout.

    python bench/load.py --scenario login --url http://127.0.0.1:8000 \
        --inbox http://127.0.0.1:9000 --api-key KEY --concurrency 16 --duration 10 \
        [--rate 50] [--warmup 2]

Scenarios:
  trivial  GET --path (default /) on --url: the framework ceiling.
  healthz  GET /healthz.
  get      GET /otp/{id} for ids read from --ids-file.
  dlr      POST /webhooks/messageflow, one report per request ({"externalId": "<id>-1",
           "status": "DELIVRD"}) for ids read from --ids-file, Basic auth with --webhook-secret.
  login    POST /otp/start for a fresh number, GET {inbox}/inbox/{number}?wait=5 (the fake
           provider's copy of the SMS), POST /otp/verify with the code read from it.

Closed loop by default: --concurrency workers, each with its own keep-alive connection, each
sending its next request when the previous one answered (after a failed login, 10 ms later).
With --rate R (login only) the run is open loop: logins start at R per second on a fixed
schedule whatever the answers, at most --max-inflight at once (arrivals past it are counted as
`dropped`); latencies are then also measured from the scheduled start, so a slow server cannot
hide queueing (coordinated omission).
An open-loop login holds two connections (service, fake provider) only while it is in flight and
gives them back for the next one; the file-descriptor limit is raised to fit --max-inflight.

--records-out FILE (open loop) also writes every login of the run to FILE: its scheduled time,
and for each request to the service its status, problem `code`, whether it carried Retry-After,
its latency, and for the start the wall-clock time of the answer (bench/harness/overload.py reads
it). Nothing is retried: a shed start ends its login.

The client is a minimal HTTP/1.1 keep-alive client on asyncio protocols with httptools' parser
under uvloop: several times cheaper per request than httpx, which matters because this process
shares the machine's cores with the server it measures. Every request has a timeout; every loop
is bounded by --duration (and --count).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import itertools
import json
import random
import re
import resource
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httptools
import uvloop

REQUEST_TIMEOUT = 10.0
FAILED_LOGIN_PAUSE = 0.01
"""Closed loop: a user whose login failed (a shed start, say) pauses this long before the next,
as after a transport error: no hot spinning against a server that refuses, and the concurrency
stays what was asked (honouring Retry-After, a second, would idle the user)."""
INBOX_WAIT = 5
CODE_RE = re.compile(rb"(?<!\d)(\d{4,10})(?!\d)")


class HttpError(Exception):
    """A request that got no HTTP answer (connection refused, reset, timeout, parse error)."""

    def __init__(self, kind: str) -> None:
        super().__init__(kind)
        self.kind = kind


class _Protocol(asyncio.Protocol):
    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.chunks: list[bytes] = []
        self.waiter: asyncio.Future[tuple[int, bytes]] | None = None
        self.closed = False

    # asyncio callbacks
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            self._fail("parse_error")
            if self.transport is not None:
                self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:  # noqa: ARG002
        self.closed = True
        self._fail("connection_lost")

    # httptools callbacks
    def on_body(self, body: bytes) -> None:
        self.chunks.append(body)

    def on_message_complete(self) -> None:
        status = self.parser.get_status_code()
        body = b"".join(self.chunks)
        self.chunks = []
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result((status, body))
        if not self.parser.should_keep_alive() and self.transport is not None:
            self.closed = True
            self.transport.close()

    def _fail(self, kind: str) -> None:
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(HttpError(kind))


class _RetryAfterProtocol(_Protocol):
    """Also notes whether the last response carried Retry-After (httptools calls on_header
    only when the protocol has it: the other scenarios do not pay for it)."""

    retry_after = False

    def on_message_begin(self) -> None:
        self.retry_after = False

    def on_header(self, name: bytes, value: bytes) -> None:  # noqa: ARG002
        if name.lower() == b"retry-after":
            self.retry_after = True


class Connection:
    """One keep-alive HTTP/1.1 connection, reopened when the server closed it."""

    opened = 0
    """Connections opened by this process (class-wide)."""

    def __init__(self, url: str, protocol: type[_Protocol] = _Protocol) -> None:
        parts = urlsplit(url)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 80
        self.host_header = f"Host: {parts.netloc}\r\n".encode()
        self.protocol = protocol
        self.proto: _Protocol | None = None

    async def request(
        self, method: str, path: str, headers: bytes = b"", body: bytes | None = None
    ) -> tuple[int, bytes]:
        try:
            async with asyncio.timeout(REQUEST_TIMEOUT):
                if self.proto is None or self.proto.closed:
                    loop = asyncio.get_running_loop()
                    Connection.opened += 1
                    _, self.proto = await loop.create_connection(
                        self.protocol, self.host, self.port
                    )
                proto = self.proto
                head = f"{method} {path} HTTP/1.1\r\n".encode() + self.host_header + headers
                if body is not None:
                    head += b"Content-Length: %d\r\n" % len(body)
                waiter: asyncio.Future[tuple[int, bytes]] = (
                    asyncio.get_running_loop().create_future()
                )
                proto.waiter = waiter
                assert proto.transport is not None
                proto.transport.write(head + b"\r\n" + (body or b""))
                return await waiter
        except TimeoutError:
            self.close()
            raise HttpError("timeout") from None
        except OSError as exc:
            self.close()
            raise HttpError(type(exc).__name__) from None
        except HttpError:
            self.close()
            raise

    def close(self) -> None:
        if self.proto is not None and self.proto.transport is not None:
            self.proto.transport.close()
        self.proto = None


class Recorder:
    """Latencies and statuses per call, counted only inside the measured window."""

    def __init__(self, measure_from: float, measure_to: float, origin: float = 0.0) -> None:
        self.start = measure_from
        self.end = measure_to
        self.origin = origin
        """When the run began (time.monotonic()): trace times are relative to it."""
        self.latencies: dict[str, list[float]] = defaultdict(list)
        self.statuses: dict[str, Counter[str]] = defaultdict(Counter)
        self.dropped = 0
        self.lags: list[float] = []
        self.max_in_flight = 0

    def in_window(self, t: float) -> bool:
        return self.start <= t <= self.end

    def record(self, call: str, status: int | str, began: float, ended: float) -> None:
        if not self.in_window(ended):
            return
        self.statuses[call][str(status)] += 1
        self.latencies[call].append(ended - began)


async def timed(  # noqa: PLR0917 - a hot helper, called positionally
    rec: Recorder,
    call: str,
    conn: Connection,
    method: str,
    path: str,
    headers: bytes,
    body: bytes | None = None,
    expect: int = 200,
    *,
    trace: dict[str, Any] | None = None,
) -> tuple[int, bytes] | None:
    """One request; None (and recorded as an error) unless it answered `expect`. With `trace`,
    the request is also described in trace[call] (see --records-out)."""
    began = time.monotonic()
    try:
        status, payload = await conn.request(method, path, headers, body)
    except HttpError as exc:
        ended = time.monotonic()
        rec.record(call, exc.kind, began, ended)
        if trace is not None:
            trace[call] = _trace(rec, exc.kind, began=began, ended=ended, payload=None, proto=None)
        await asyncio.sleep(0.01)  # no hot spinning against a server that is down
        return None
    ended = time.monotonic()
    rec.record(call, status, began, ended)
    if trace is not None:
        trace[call] = _trace(
            rec, str(status), began=began, ended=ended, payload=payload, proto=conn.proto
        )
    return (status, payload) if status == expect else None


def _trace(
    rec: Recorder,
    status: str,
    *,
    began: float,
    ended: float,
    payload: bytes | None,
    proto: _Protocol | None,
) -> dict[str, Any]:
    """One request to the service, as --records-out writes it."""
    code = None
    if payload is not None and not status.startswith("2"):
        try:
            code = json.loads(payload).get("code")
        except (ValueError, AttributeError):
            code = None
    return {
        "sent": round(began - rec.origin, 6),
        "ms": round(1000 * (ended - began), 3),
        "status": status,
        "code": code,
        "retry_after": bool(getattr(proto, "retry_after", False)),
        "wall": time.time(),
    }


class Scenario:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.auth = f"Authorization: Bearer {args.api_key}\r\n".encode() if args.api_key else b""
        self.json_headers = self.auth + b"Content-Type: application/json\r\n"
        self.numbers = itertools.count(args.number_base)
        self.ids: list[str] = []
        if args.ids_file:
            text = Path(args.ids_file).read_text(encoding="utf-8")
            self.ids = [line.strip() for line in text.splitlines() if line.strip()]
        token = base64.b64encode(f"messageflow:{args.webhook_secret}".encode()).decode()
        self.dlr_headers = f"Authorization: Basic {token}\r\nContent-Type: application/json\r\n"
        self.new_ids: list[str] = []
        self.rng = random.Random(args.seed)
        self.traces: list[dict[str, Any]] | None = [] if args.records_out else None

    async def one_request(self, rec: Recorder, conn: Connection) -> None:
        scenario = self.args.scenario
        if scenario == "trivial":
            await timed(rec, "request", conn, "GET", self.args.path, b"")
        elif scenario == "healthz":
            await timed(rec, "request", conn, "GET", "/healthz", b"")
        elif scenario == "get":
            vid = self.ids[self.rng.randrange(len(self.ids))]
            await timed(rec, "request", conn, "GET", f"/otp/{vid}", self.auth)
        elif scenario == "dlr":
            vid = self.ids[self.rng.randrange(len(self.ids))]
            body = json.dumps({"externalId": f"{vid}-1", "status": "DELIVRD"}).encode()
            await timed(
                rec,
                "request",
                conn,
                "POST",
                "/webhooks/messageflow",
                self.dlr_headers.encode(),
                body,
            )
        else:
            raise ValueError(scenario)

    async def login(
        self, rec: Recorder, svc: Connection, inbox: Connection, scheduled: float | None = None
    ) -> bool:
        """One login; whether it was approved."""
        began = time.monotonic()
        number = f"+48{next(self.numbers)}"
        trace: dict[str, Any] | None = None
        if self.traces is not None:
            trace = {"number": number, "scheduled": round((scheduled or began) - rec.origin, 6)}
            trace["lag_ms"] = round(1000 * (began - (scheduled or began)), 3)
            self.traces.append(trace)
        body = json.dumps({"to": number}).encode()
        answer = await timed(
            rec, "start", svc, "POST", "/otp/start", self.json_headers, body, 201, trace=trace
        )
        if answer is None:
            rec.record("login", "start_failed", scheduled or began, time.monotonic())
            return False
        vid = json.loads(answer[1])["id"]
        sms = await timed(rec, "inbox", inbox, "GET", f"/inbox/{number}?wait={INBOX_WAIT}", b"")
        match = CODE_RE.search(sms[1]) if sms else None
        if match is None:
            rec.record("login", "no_sms", scheduled or began, time.monotonic())
            return False
        body = b'{"id":"%s","code":"%s"}' % (vid.encode(), match.group(1))
        answer = await timed(
            rec, "verify", svc, "POST", "/otp/verify", self.json_headers, body, trace=trace
        )
        ended = time.monotonic()
        valid = answer is not None and json.loads(answer[1]).get("valid") is True
        rec.record("login", 200 if valid else "not_approved", scheduled or began, ended)
        if trace is not None:
            trace["done"] = round(ended - rec.origin, 6)
            trace["approved"] = valid
        if valid and rec.in_window(ended):
            self.new_ids.append(vid)
        return valid


async def closed_loop(sc: Scenario, rec: Recorder, stop_at: float, count: int | None) -> None:
    done = itertools.count()

    async def worker() -> None:
        svc = Connection(sc.args.url)
        inbox = Connection(sc.args.inbox) if sc.args.inbox else svc
        try:
            while time.monotonic() < stop_at:
                if count is not None and next(done) >= count:
                    return
                if sc.args.scenario == "login":
                    if not await sc.login(rec, svc, inbox):
                        await asyncio.sleep(FAILED_LOGIN_PAUSE)
                else:
                    await sc.one_request(rec, svc)
        finally:
            svc.close()
            inbox.close()

    await asyncio.gather(*(worker() for _ in range(sc.args.concurrency)))


async def open_loop(sc: Scenario, rec: Recorder, began: float, stop_at: float) -> None:
    rate = sc.args.rate
    idle: list[tuple[Connection, Connection]] = []
    tasks: set[asyncio.Task[None]] = set()
    protocol = _RetryAfterProtocol if sc.traces is not None else _Protocol

    async def one(scheduled: float) -> None:
        lag = time.monotonic() - scheduled
        if rec.in_window(scheduled):
            rec.lags.append(lag)
        pair = (
            idle.pop() if idle else (Connection(sc.args.url, protocol), Connection(sc.args.inbox))
        )
        try:
            await sc.login(rec, pair[0], pair[1], scheduled)
        finally:
            idle.append(pair)

    for i in itertools.count():
        scheduled = began + i / rate
        if scheduled >= stop_at:
            break
        delay = scheduled - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        if len(tasks) >= sc.args.max_inflight:
            if rec.in_window(scheduled):
                rec.dropped += 1
            continue
        task = asyncio.create_task(one(scheduled))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        rec.max_in_flight = max(rec.max_in_flight, len(tasks))
    if tasks:
        await asyncio.wait(tasks, timeout=REQUEST_TIMEOUT * 2 + INBOX_WAIT)
    for pair in idle:
        pair[0].close()
        pair[1].close()


async def probe(url: str, rec: Recorder, stop_at: float, interval: float) -> None:
    """GET /healthz at a fixed pace: shows whether the event loop stays responsive under load."""
    conn = Connection(url)
    try:
        while time.monotonic() < stop_at:
            await timed(rec, "healthz", conn, "GET", "/healthz", b"")
            await asyncio.sleep(interval)
    finally:
        conn.close()


def summarize(rec: Recorder, args: argparse.Namespace, window: float) -> dict[str, Any]:
    main_call = "login" if args.scenario == "login" else "request"
    expected = {"start": "201"}
    calls: dict[str, Any] = {}
    errors: dict[str, dict[str, int]] = {}
    for call, statuses in rec.statuses.items():
        ok = expected.get(call, "200")
        lat = sorted(rec.latencies[call])
        calls[call] = {
            "count": len(lat),
            "ok": statuses.get(ok, 0),
            "p50_ms": _pct(lat, 0.50),
            "p99_ms": _pct(lat, 0.99),
            "mean_ms": round(1000 * sum(lat) / len(lat), 3) if lat else None,
            "max_ms": round(1000 * lat[-1], 3) if lat else None,
        }
        bad = {status: n for status, n in statuses.items() if status != ok}
        if bad:
            errors[call] = bad
    ok_main = calls.get(main_call, {}).get("ok", 0)
    lags = sorted(rec.lags)
    return {
        "scenario": args.scenario,
        "concurrency": args.concurrency,
        "rate": args.rate,
        "duration_s": round(window, 3),
        "count": ok_main,
        "rps": round(ok_main / window, 2) if window > 0 else 0.0,
        "calls": calls,
        "errors": errors,
        "dropped": rec.dropped,
        "max_in_flight": rec.max_in_flight,
        "connections_opened": Connection.opened,
        "schedule_lag": {
            "count": len(lags),
            "ok": len(lags),
            "p50_ms": _pct(lags, 0.50),
            "p99_ms": _pct(lags, 0.99),
            "mean_ms": round(1000 * sum(lags) / len(lags), 3) if lags else None,
            "max_ms": round(1000 * lags[-1], 3) if lags else None,
        }
        if args.rate
        else None,
    }


def _pct(sorted_values: list[float], q: float) -> float | None:
    if not sorted_values:
        return None
    index = min(len(sorted_values) - 1, max(0, round(q * len(sorted_values) + 0.5) - 1))
    return round(1000 * sorted_values[index], 3)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    sc = Scenario(args)
    if args.scenario in {"get", "dlr"} and not sc.ids:
        raise SystemExit(f"--scenario {args.scenario} needs a non-empty --ids-file")
    began = time.monotonic()
    measure_from = began + args.warmup
    stop_at = measure_from + args.duration
    rec = Recorder(measure_from, stop_at, began)
    jobs = []
    if args.rate:
        if args.scenario != "login":
            raise SystemExit("--rate is for --scenario login")
        jobs.append(open_loop(sc, rec, began, stop_at))
    else:
        jobs.append(closed_loop(sc, rec, stop_at, args.count))
    if args.probe_healthz:
        jobs.append(probe(args.url, rec, stop_at, 1 / args.probe_healthz))
    await asyncio.gather(*jobs)
    ended = min(time.monotonic(), stop_at)
    result = summarize(rec, args, max(1e-9, ended - measure_from))
    if args.ids_out:
        text = "\n".join(sc.new_ids) + ("\n" if sc.new_ids else "")
        Path(args.ids_out).write_text(text, encoding="utf-8")  # noqa: ASYNC240 - after the run
    if args.records_out:
        records = {
            "window_from": round(measure_from - began, 6),
            "window_to": round(stop_at - began, 6),
            "logins": sc.traces,
        }
        Path(args.records_out).write_text(json.dumps(records), encoding="utf-8")  # noqa: ASYNC240
    return result


def raise_file_limit(needed: int) -> None:
    """Lift the soft limit on open files towards the hard one, so --max-inflight logins (two
    connections each) fit; SystemExit if even the hard limit is too low."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= needed:
        return
    target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
    resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    if target < needed:
        raise SystemExit(f"open files limited to {hard}: --max-inflight needs {needed}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--scenario", required=True, choices=["trivial", "healthz", "get", "dlr", "login"]
    )
    parser.add_argument("--url", required=True, help="the server under test")
    parser.add_argument("--inbox", default="", help="the fake provider (login)")
    parser.add_argument("--api-key", default="")
    parser.add_argument("--webhook-secret", default="")
    parser.add_argument("--path", default="/")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--duration", type=float, default=10.0, help="measured seconds")
    parser.add_argument("--warmup", type=float, default=1.0, help="seconds run, not measured")
    parser.add_argument("--count", type=int, default=None, help="stop after this many loops")
    parser.add_argument("--rate", type=float, default=0.0, help="open loop: logins per second")
    parser.add_argument("--max-inflight", type=int, default=512, help="open loop: logins")
    parser.add_argument("--number-base", type=int, default=601_000_000)
    parser.add_argument("--ids-file", default="")
    parser.add_argument("--ids-out", default="")
    parser.add_argument("--probe-healthz", type=float, default=0.0, help="probes per second")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--records-out", default="", help="open loop: every login, as JSON")
    args = parser.parse_args(argv)
    if args.duration <= 0 or args.duration > 600 or args.concurrency < 1:
        parser.error("--duration must be in (0, 600] and --concurrency >= 1")
    if not 1 <= args.max_inflight <= 20_000 or args.rate > 10_000:
        parser.error("--max-inflight must be in [1, 20000] and --rate at most 10000")
    if args.records_out and not args.rate:
        parser.error("--records-out is for the open loop (--rate)")
    raise_file_limit(2 * (max(args.max_inflight, args.concurrency) + 1) + 64)
    uvloop.install()
    result = asyncio.run(run(args))
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
