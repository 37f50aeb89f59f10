"""A fake SMS provider for the tests and the benchmark: MessageFlow and Flowstates in one raw ASGI
app, served in-process (a thread, or the test's event loop) or as its own process:

    python -m tests.support.fake_provider --port 9000 --webhook-secret S [--dlr-delay 0.05]

- `POST /v2.1/sms` (MessageFlow Priority): answers MessageFlow's envelope
  `{"data": [...], "errors": [], "meta": {"status": 200}}`, and posts a delivery report
  `{"externalId", "status"}` to the message's `webhookUrl` with HTTP Basic credentials
  `messageflow:<webhook secret>`, `dlr_delay` seconds later and off the request path.
- `POST /messages/send` (Flowstates): answers 201 `{"id": "fs-<n>", "status": "queued"}`, and
  posts `{"messageId", "status"}` to `flowstates_webhook` with `Bearer <webhook secret>`.
- `GET /inbox/{e164}`: the last SMS text that number got (text/plain), 404 when none;
  `?wait=<seconds>` (at most 10) long-polls until one arrives.
- `GET /stats`: counters as JSON; `POST /control`: `{"dlr": bool, "dlr_delay": s,
  "dlr_status": str, "behaviour": {"status", "delay", "hang"}, "answers": [status, ...]}`.

How it answers is switchable at any time (`behave`, `answers`, `/control`): normally, slowly
(`slow(s)`: a delay before the answer), with an error status (`failing(500)`: MessageFlow's
envelope with the error; a 4xx other than 429 is a rejection), or never (`HANG`: the request is
read and held until the client leaves or the fake closes). With `keep_requests` every request is
recorded in an `Inbox` (several fakes may share one) with its outcome: *accepted* only when the
fake answered 2xx to a client still connected; *abandoned* when the client went away while the
fake was delaying or holding it (a killed service, a provider timeout), as a real provider drops
a submission whose connection broke before it answered.

Raw ASGI rather than a framework: in the benchmark this process shares the machine's cores with
the service under test, so it must cost as little CPU per SMS as it can. Memory is bounded in
that mode (keep_requests off; at most MAX_INBOX numbers and MAX_DLR_QUEUE reports).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import collections
import contextlib
import itertools
import math
import threading
import time
import urllib.parse
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, NamedTuple, Self

import httpx
import msgspec
import uvicorn

from tests.support.asgi import ThreadedServer
from tests.support.ports import free_port

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

MAX_INBOX = 400_000
MAX_DLR_QUEUE = 100_000
DLR_SENDERS = 16
MAX_WAIT_SECONDS = 10.0

ACCEPTED = "accepted"
FAILED = "failed"  # answered with an error status
ABANDONED = "abandoned"  # the client left before the answer
UNANSWERED = "unanswered"  # still held when the fake shut down
PENDING = "pending"

MESSAGEFLOW = "messageflow"
FLOWSTATES = "flowstates"

_JSON = b"application/json"
_MESSAGEFLOW_OK = msgspec.json.encode(
    {"data": [{"status": "accepted"}], "errors": [], "meta": {"status": 200}}
)
_UNAUTHORIZED = b'{"data":[],"errors":[{"title":"Unauthorized","code":"401"}],"meta":{}}'
_BAD_REQUEST = b'{"data":[],"errors":[{"title":"Bad request","code":"400"}],"meta":{}}'


class Behaviour(NamedTuple):
    """How the fake answers one SMS: after `delay` seconds with `status`, or never (`hang`)."""

    status: int = 200
    delay: float = 0.0
    hang: bool = False


NORMAL = Behaviour()
HANG = Behaviour(hang=True)


def slow(seconds: float) -> Behaviour:
    return Behaviour(delay=seconds)


def failing(status: int = 500) -> Behaviour:
    return Behaviour(status=status)


@dataclass
class Sms:
    """One SMS request a fake received."""

    provider: str
    """The name of the fake that received it."""
    api: str
    """MESSAGEFLOW or FLOWSTATES."""
    to: str
    text: str
    external_id: str
    """MessageFlow's externalId (<reference>-<send>); empty for Flowstates. The reference is
    the service's internal name of the verification, not the id its clients see."""
    validity_minutes: int
    """MessageFlow's validity; -1 when absent."""
    headers: dict[str, str]
    """Request headers, names in lower case."""
    body: dict[str, Any]
    arrived: float
    """Wall-clock time (time.time()) it was read: comparable with the API's timestamps."""
    at: float
    """time.monotonic() when it was read."""
    outcome: str = PENDING
    finished: float | None = None
    """Wall-clock time the outcome was known."""
    message_id: str | None = None
    """The id the fake answered (Flowstates)."""

    @property
    def reference(self) -> str:
        return self.external_id.rpartition("-")[0]

    @property
    def send(self) -> int:
        return int(self.external_id.rpartition("-")[2])

    def code(self, length: int = 6) -> str:
        words = [w.strip(".:,#") for w in self.text.split()]
        codes = [w for w in words if w.isdigit() and len(w) == length]
        if not codes:
            raise AssertionError(f"the SMS holds no {length}-digit code: {self.text!r}")
        return codes[0]


@dataclass
class Inbox:
    """Every request the fakes sharing this inbox received, in arrival order (thread-safe)."""

    sms: list[Sms] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, sms: Sms) -> None:
        with self.lock:
            self.sms.append(sms)

    def finish(self, sms: Sms, outcome: str) -> None:
        with self.lock:
            sms.outcome = outcome
            sms.finished = time.time()

    def snapshot(self) -> list[Sms]:
        with self.lock:
            return list(self.sms)

    def for_reference(self, reference: str) -> list[Sms]:
        return [s for s in self.snapshot() if s.reference == reference]

    def accepted(self, reference: str | None = None) -> list[Sms]:
        return [
            s
            for s in self.snapshot()
            if s.outcome == ACCEPTED and (reference is None or s.reference == reference)
        ]


def _messageflow_error(status: int) -> bytes:
    if 400 <= status < 500 and status != 429:
        error = {"title": "Bad number", "message": "invalid", "code": "ERR_NUMBER"}
    else:
        error = {"title": "unavailable", "message": "try later", "code": "E500"}
    return msgspec.json.encode({"data": [], "errors": [error], "meta": {"status": status}})


class FakeProvider:
    """The fake: an ASGI app (`app()`), served by whoever runs it, or by `start()` in a thread.

    `url` is both providers' base URL setting; the port is chosen at construction."""

    def __init__(
        self,
        *,
        name: str = "provider",
        inbox: Inbox | None = None,
        port: int | None = None,
        webhook_secret: str = "",
        dlr_status: str | None = "DELIVRD",
        dlr_delay: float = 0.05,
        flowstates_webhook: str | None = None,
        keep_requests: bool = True,
    ) -> None:
        self.name = name
        self.inbox = inbox if inbox is not None else Inbox()
        self.port = port if port is not None else free_port()
        self.webhook_secret = webhook_secret
        self.dlr_status = dlr_status
        """The status every delivery report carries; None: no reports."""
        self._paused_dlr_status: str | None = None
        self.dlr_delay = dlr_delay
        self.flowstates_webhook = flowstates_webhook
        self.keep_requests = keep_requests
        self.stats = collections.Counter[str]()
        self._lock = threading.Lock()
        self._behaviour = NORMAL
        self._script: collections.deque[Behaviour] = collections.deque()
        self._ids = itertools.count(1)
        self._phones: collections.OrderedDict[str, str] = collections.OrderedDict()
        self._waiters: dict[str, list[asyncio.Future[str]]] = {}
        # Owned by the serving event loop, from the lifespan's startup to its shutdown.
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closing: asyncio.Event | None = None
        self._queue: asyncio.Queue[tuple[str, bytes, str]] | None = None
        self._client: httpx.AsyncClient | None = None
        self._senders: list[asyncio.Task[None]] = []
        self._scheduled = 0
        self._posting = 0
        self._thread: ThreadedServer | None = None
        self._basic_auth_cache = ("", "")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def app(self) -> Callable[[Scope, Receive, Send], Awaitable[None]]:
        """The ASGI application (for `tests.support.asgi.serving` or uvicorn)."""
        return self

    # --- behaviour, switchable from any thread ---------------------------------------------------

    def behave(self, behaviour: Behaviour, *first: Behaviour) -> None:
        """From now on answer with `behaviour`, after answering the next requests with `first`."""
        with self._lock:
            self._behaviour = behaviour
            self._script = collections.deque(first)

    @property
    def answers(self) -> list[int]:
        """The statuses scripted for the next requests, after which the behaviour applies."""
        with self._lock:
            return [b.status for b in self._script]

    @answers.setter
    def answers(self, statuses: list[int]) -> None:
        with self._lock:
            self._script = collections.deque(Behaviour(status=s) for s in statuses)

    def _next_behaviour(self) -> Behaviour:
        with self._lock:
            return self._script.popleft() if self._script else self._behaviour

    @property
    def received(self) -> list[Sms]:
        """Every request this fake recorded (keep_requests), in arrival order."""
        return [s for s in self.inbox.snapshot() if s.provider == self.name]

    # --- running in a thread -----------------------------------------------------------------

    def start(self) -> Self:
        """Serve on `port` from a thread of this process until `stop()`."""
        self._thread = ThreadedServer(self, self.port, f"fake-provider-{self.name}")
        self._thread.start()
        return self

    def stop(self) -> None:
        """Answer what is held (outcome UNANSWERED) and stop the thread's server."""
        self._release_held()
        if self._thread is not None:
            self._thread.stop()
            self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    async def close(self) -> None:
        """Post no more delivery reports and let go of every held request: before the server
        that runs the app in this loop stops (the server's shutdown closes the rest)."""
        self.dlr_status = None
        self._release_held()

    def _release_held(self) -> None:
        loop, closing = self._loop, self._closing
        if loop is None or closing is None or loop.is_closed():
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            closing.set()
        else:
            with contextlib.suppress(RuntimeError):  # the loop closed in between
                loop.call_soon_threadsafe(closing.set)

    # --- ASGI --------------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "lifespan":
            await self._lifespan(receive, send)
            return
        if kind != "http":
            return
        method, path = scope["method"], scope["path"]
        if method == "POST" and path == "/v2.1/sms":
            await self._messageflow(scope, receive, send)
        elif method == "POST" and path == "/messages/send":
            await self._flowstates(scope, receive, send)
        elif method == "GET" and path.startswith("/inbox/"):
            await self._inbox(scope, send, path.removeprefix("/inbox/"))
        elif method == "GET" and path == "/stats":
            await _respond(send, 200, msgspec.json.encode(self._stats()), _JSON)
        elif method == "POST" and path == "/control":
            self._control(msgspec.json.decode(await _read_body(receive)))
            await _respond(send, 200, b"{}", _JSON)
        else:
            await _respond(send, 404, b'{"error":"not found"}', _JSON)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self._loop = asyncio.get_running_loop()
                self._closing = asyncio.Event()
                self._queue = asyncio.Queue()
                self._client = httpx.AsyncClient(
                    timeout=5.0, limits=httpx.Limits(max_connections=DLR_SENDERS)
                )
                self._senders = [
                    asyncio.create_task(self._post_reports()) for _ in range(DLR_SENDERS)
                ]
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                for task in self._senders:
                    task.cancel()
                await asyncio.gather(*self._senders, return_exceptions=True)
                if self._client is not None:
                    await self._client.aclose()
                self._queue = None
                await send({"type": "lifespan.shutdown.complete"})
                return

    # --- the providers' APIs -----------------------------------------------------------------

    async def _messageflow(self, scope: Scope, receive: Receive, send: Send) -> None:
        raw = await _read_body(receive)
        headers = dict(scope["headers"])
        if not headers.get(b"authorization") or not headers.get(b"application-key"):
            self.stats["sms_unauthorized"] += 1
            await _respond(send, 401, _UNAUTHORIZED, _JSON)
            return
        try:
            body = msgspec.json.decode(raw)
            numbers = list(body["phoneNumbers"])
            text = str(body["message"])
        except (msgspec.DecodeError, KeyError, TypeError):
            self.stats["sms_bad_request"] += 1
            await _respond(send, 400, _BAD_REQUEST, _JSON)
            return
        sms = None
        if self.keep_requests:
            sms = self._record(MESSAGEFLOW, scope, body, numbers[0] if numbers else "", text)
        behaviour = self._next_behaviour()
        if behaviour != NORMAL and not await self._answering(receive, send, behaviour, sms):
            return
        if behaviour.status >= 300:
            await _respond(send, behaviour.status, _messageflow_error(behaviour.status), _JSON)
            self._finish(sms, FAILED)
            return
        self.stats["sms"] += 1
        for number in numbers:
            self._deliver(number, text)
        webhook = body.get("webhookUrl")
        if webhook and self.dlr_status:
            report = {"externalId": body.get("externalId"), "status": self.dlr_status}
            self._schedule_report(webhook, msgspec.json.encode(report), self._basic_auth())
        await _respond(send, 200, _MESSAGEFLOW_OK, _JSON)
        self._finish(sms, ACCEPTED)

    async def _flowstates(self, scope: Scope, receive: Receive, send: Send) -> None:
        raw = await _read_body(receive)
        if not dict(scope["headers"]).get(b"authorization"):
            self.stats["sms_unauthorized"] += 1
            await _respond(send, 401, b'{"error":"unauthorized"}', _JSON)
            return
        try:
            body = msgspec.json.decode(raw)
            number = str(body["to"])
            text = str(body["message"])
        except (msgspec.DecodeError, KeyError, TypeError):
            self.stats["sms_bad_request"] += 1
            await _respond(send, 400, b'{"error":"bad request"}', _JSON)
            return
        sms = self._record(FLOWSTATES, scope, body, number, text) if self.keep_requests else None
        behaviour = self._next_behaviour()
        if behaviour != NORMAL and not await self._answering(receive, send, behaviour, sms):
            return
        if behaviour.status >= 300:
            await _respond(send, behaviour.status, b'{"error":"unavailable"}', _JSON)
            self._finish(sms, FAILED)
            return
        message_id = f"fs-{next(self._ids)}"
        if sms is not None:
            sms.message_id = message_id
        self.stats["sms"] += 1
        self._deliver(number, text)
        if self.flowstates_webhook and self.dlr_status:
            report = {"messageId": message_id, "status": self.dlr_status}
            self._schedule_report(
                self.flowstates_webhook,
                msgspec.json.encode(report),
                f"Bearer {self.webhook_secret}",
            )
        answer = msgspec.json.encode({"id": message_id, "status": "queued"})
        await _respond(send, 201, answer, _JSON)
        self._finish(sms, ACCEPTED)

    def _record(self, api: str, scope: Scope, body: Any, to: str, text: str) -> Sms:
        sms = Sms(
            provider=self.name,
            api=api,
            to=to,
            text=text,
            external_id=str(body.get("externalId", "")),
            validity_minutes=int(body.get("validity", -1)),
            headers={k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]},
            body=body,
            arrived=time.time(),
            at=time.monotonic(),
        )
        self.inbox.add(sms)
        return sms

    def _finish(self, sms: Sms | None, outcome: str) -> None:
        if outcome != ACCEPTED:
            self.stats[f"sms_{outcome}"] += 1
        if sms is not None:
            self.inbox.finish(sms, outcome)

    async def _answering(
        self, receive: Receive, send: Send, behaviour: Behaviour, sms: Sms | None
    ) -> bool:
        """Wait as `behaviour` says; False (the outcome recorded) when the request is not to be
        answered as it says: its client left, or the fake is closing."""
        if not behaviour.hang and behaviour.delay <= 0:
            return True
        waited = await self._hold(receive, math.inf if behaviour.hang else behaviour.delay)
        if waited == "gone":
            self._finish(sms, ABANDONED)
            return False
        if waited == "closing":
            self._finish(sms, UNANSWERED)
            await _respond(send, 503, _messageflow_error(503), _JSON, close=True)
            return False
        return True

    async def _hold(self, receive: Receive, seconds: float) -> str:
        """Keep the request unanswered for `seconds`: "elapsed", "gone" (the client closed the
        connection meanwhile) or "closing" (the fake is letting go of held requests)."""
        if self._closing is None:  # served without a lifespan: nothing can release it early
            self._closing = asyncio.Event()
        if self._closing.is_set():
            return "closing"
        gone = asyncio.ensure_future(receive())
        closing = asyncio.ensure_future(self._closing.wait())
        try:
            done, _ = await asyncio.wait(
                {gone, closing},
                timeout=None if math.isinf(seconds) else seconds,
                return_when=asyncio.FIRST_COMPLETED,
            )
        finally:
            for task in (gone, closing):
                task.cancel()
        if gone in done and not gone.cancelled() and gone.result()["type"] == "http.disconnect":
            return "gone"
        if closing in done:
            return "closing"
        return "elapsed"

    # --- the phones: the last SMS per number, long-polled ------------------------------------

    def _deliver(self, number: str, text: str) -> None:
        self._phones[number] = text
        self._phones.move_to_end(number)
        while len(self._phones) > MAX_INBOX:
            self._phones.popitem(last=False)
        for waiter in self._waiters.pop(number, []):
            if not waiter.done():
                waiter.set_result(text)

    async def _inbox(self, scope: Scope, send: Send, raw_number: str) -> None:
        number = "+" + urllib.parse.unquote(raw_number).lstrip("+ ")
        text = self._phones.get(number)
        if text is None:
            query = urllib.parse.parse_qs(scope.get("query_string", b"").decode())
            wait = min(float(query.get("wait", ["0"])[0] or 0), MAX_WAIT_SECONDS)
            if wait > 0:
                waiter: asyncio.Future[str] = asyncio.get_running_loop().create_future()
                self._waiters.setdefault(number, []).append(waiter)
                try:
                    async with asyncio.timeout(wait):
                        text = await waiter
                except TimeoutError:
                    waiters = self._waiters.get(number, [])
                    with contextlib.suppress(ValueError):
                        waiters.remove(waiter)
                    if not waiters:
                        self._waiters.pop(number, None)
        if text is None:
            await _respond(send, 404, b"no SMS for this number", b"text/plain")
            return
        await _respond(send, 200, text.encode(), b"text/plain; charset=utf-8")

    # --- delivery reports, posted off the request path ---------------------------------------

    def _basic_auth(self) -> str:
        """MessageFlow's webhook credentials, `messageflow:<webhook secret>` (cached: hot path)."""
        secret, header = self._basic_auth_cache
        if secret != self.webhook_secret:
            token = base64.b64encode(f"messageflow:{self.webhook_secret}".encode()).decode()
            header = f"Basic {token}"
            self._basic_auth_cache = (self.webhook_secret, header)
        return header

    def _schedule_report(self, url: str, report: bytes, authorization: str) -> None:
        if self._queue is None:  # served without a lifespan: no reports
            return
        if self._queue.qsize() + self._scheduled >= MAX_DLR_QUEUE:
            self.stats["dlr_dropped"] += 1
            return
        self._scheduled += 1
        asyncio.get_running_loop().call_later(
            self.dlr_delay, self._report_due, (url, report, authorization)
        )

    def _report_due(self, item: tuple[str, bytes, str]) -> None:
        self._scheduled -= 1
        if self._queue is not None:
            self._queue.put_nowait(item)

    async def _post_reports(self) -> None:
        queue, client = self._queue, self._client
        if queue is None or client is None:
            return
        headers: dict[str, dict[str, str]] = {}
        while True:
            url, report, authorization = await queue.get()
            self._posting += 1
            try:
                if authorization not in headers:
                    headers[authorization] = {
                        "Authorization": authorization,
                        "Content-Type": "application/json",
                    }
                response = await client.post(url, content=report, headers=headers[authorization])
                self.stats[f"dlr_{response.status_code}"] += 1
            except (httpx.HTTPError, OSError):
                self.stats["dlr_error"] += 1
            finally:
                self._posting -= 1
                queue.task_done()

    # --- stats and control -------------------------------------------------------------------

    def _stats(self) -> dict[str, int]:
        stats = dict(self.stats)
        queued = self._queue.qsize() if self._queue is not None else 0
        stats["dlr_queue"] = queued + self._scheduled + self._posting
        stats["inbox_numbers"] = len(self._phones)
        return stats

    def _control(self, control: Any) -> None:
        if "dlr" in control and not control["dlr"]:
            self._paused_dlr_status = self.dlr_status or self._paused_dlr_status
            self.dlr_status = None
        elif control.get("dlr"):
            self.dlr_status = self.dlr_status or self._paused_dlr_status or "DELIVRD"
        if "dlr_status" in control:
            self.dlr_status = control["dlr_status"]
        self.dlr_delay = float(control.get("dlr_delay", self.dlr_delay))
        if "behaviour" in control:
            self.behave(Behaviour(**control["behaviour"]))
        if "answers" in control:
            self.answers = [int(s) for s in control["answers"]]


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


async def _respond(
    send: Send, status: int, body: bytes, content_type: bytes, *, close: bool = False
) -> None:
    headers = [(b"content-type", content_type), (b"content-length", b"%d" % len(body))]
    if close:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def serve(app: Callable[[Scope, Receive, Send], Awaitable[None]], port: int) -> None:
    """Run `app` (the fake, or an app around it) on 127.0.0.1:`port` until interrupted, as a
    separate process does: uvloop and httptools, as fast as the service's own server."""
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=port,
        loop="uvloop",
        http="httptools",
        lifespan="on",
        log_level="warning",
        access_log=False,
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--webhook-secret", default="")
    parser.add_argument("--dlr-delay", type=float, default=0.05)
    parser.add_argument("--dlr-status", default="DELIVRD", help="the status every report carries")
    parser.add_argument("--no-dlr", action="store_true", help="post no delivery reports")
    parser.add_argument("--flowstates-webhook", default=None, help="where Flowstates DLRs go")
    parser.add_argument(
        "--keep-requests", action="store_true", help="record every request (memory grows)"
    )
    args = parser.parse_args(argv)
    fake = FakeProvider(
        port=args.port,
        webhook_secret=args.webhook_secret,
        dlr_status=None if args.no_dlr else args.dlr_status,
        dlr_delay=args.dlr_delay,
        flowstates_webhook=args.flowstates_webhook,
        keep_requests=args.keep_requests,
    )
    serve(fake, args.port)


if __name__ == "__main__":
    main()
