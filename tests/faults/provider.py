"""A MessageFlow Priority endpoint on 127.0.0.1 whose behaviour a test switches at will.

Each `FakeMessageFlow` is one HTTP server (a thread of this test process) that answers
`POST /v2.1/sms` normally, slowly (a delay before the answer), with 500s, or never (it reads the
request and holds the connection). Every request is recorded in an `Inbox`, which several fakes
may share, so a test knows which service process (pointed at which fake) sent what.

An SMS counts as *accepted* only when the fake answered 200 to a client that was still there: a
request whose client went away while the fake was delaying or holding it (a killed service, a
provider timeout) is *abandoned*, as a real provider would drop a submission whose connection
broke before it answered. No delivery reports are posted back.
"""

from __future__ import annotations

import collections
import json
import math
import select
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, NamedTuple

ACCEPTED = "accepted"
FAILED = "failed"  # answered 5xx
ABANDONED = "abandoned"  # the client left before the answer
UNANSWERED = "unanswered"  # still held when the fake shut down
PENDING = "pending"

_ENVELOPE_OK = {"data": [{"status": "accepted"}], "errors": [], "meta": {"status": 200}}


class Behaviour(NamedTuple):
    """How the fake answers one request: after `delay` seconds with `status`, or never (`hang`)."""

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
    """One request the fake received."""

    provider: str
    external_id: str
    to: str
    text: str
    validity_minutes: int
    arrived: float
    """Wall-clock time (time.time()) the request was read: comparable with the API's timestamps."""
    outcome: str = PENDING
    finished: float | None = None

    @property
    def verification_id(self) -> str:
        return self.external_id.rpartition("-")[0]

    @property
    def send(self) -> int:
        return int(self.external_id.rpartition("-")[2])

    def code(self, length: int = 6) -> str:
        words = [w.strip(".:,#") for w in self.text.split()]
        codes = [w for w in words if w.isdigit() and len(w) == length]
        assert codes, "the SMS holds no code"
        return codes[0]


@dataclass
class Inbox:
    """Every request any fake sharing this inbox received, in arrival order."""

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

    def for_verification(self, verification_id: str) -> list[Sms]:
        return [s for s in self.snapshot() if s.verification_id == verification_id]

    def accepted(self, verification_id: str | None = None) -> list[Sms]:
        return [
            s
            for s in self.snapshot()
            if s.outcome == ACCEPTED
            and (verification_id is None or s.verification_id == verification_id)
        ]


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    fake: FakeMessageFlow


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as httpx's pool expects
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        """Quiet: the test reads the inbox, not an access log."""

    def do_POST(self) -> None:
        fake = self.server.fake
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if self.path != "/v2.1/sms":
            self._answer(404, {"errors": [{"title": "no such endpoint", "code": "E404"}]})
            return
        body = json.loads(raw or b"{}")
        sms = Sms(
            provider=fake.name,
            external_id=str(body.get("externalId", "")),
            to=str((body.get("phoneNumbers") or [""])[0]),
            text=str(body.get("message", "")),
            validity_minutes=int(body.get("validity", -1)),
            arrived=time.time(),
        )
        fake.inbox.add(sms)
        behaviour = fake.next_behaviour()
        waited = fake.hold(self.connection, math.inf if behaviour.hang else behaviour.delay)
        if waited != "elapsed":
            fake.inbox.finish(sms, ABANDONED if waited == "gone" else UNANSWERED)
            self.close_connection = True
            return
        if behaviour.status == 200:
            payload: dict[str, Any] = _ENVELOPE_OK
        else:
            payload = {
                "data": [],
                "errors": [{"title": "unavailable", "message": "try later", "code": "E500"}],
                "meta": {"status": behaviour.status},
            }
        try:
            self._answer(behaviour.status, payload)
        except OSError:
            fake.inbox.finish(sms, ABANDONED)
            self.close_connection = True
            return
        fake.inbox.finish(sms, ACCEPTED if behaviour.status == 200 else FAILED)

    def _answer(self, status: int, payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()


class FakeMessageFlow:
    """One fake MessageFlow Priority channel; `url` is the service's base URL setting."""

    def __init__(self, name: str, inbox: Inbox) -> None:
        self.name = name
        self.inbox = inbox
        self._lock = threading.Lock()
        self._behaviour = NORMAL
        self._script: collections.deque[Behaviour] = collections.deque()
        self._closing = threading.Event()
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.fake = self
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"fake-messageflow-{name}",
            daemon=True,
        )
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def behave(self, behaviour: Behaviour, *first: Behaviour) -> None:
        """From now on answer with `behaviour`, after answering the next requests with `first`."""
        with self._lock:
            self._behaviour = behaviour
            self._script = collections.deque(first)

    def next_behaviour(self) -> Behaviour:
        with self._lock:
            return self._script.popleft() if self._script else self._behaviour

    def hold(self, connection: socket.socket, seconds: float) -> str:
        """Wait `seconds` with the request unanswered: "elapsed", "gone" (the client closed the
        connection meanwhile) or "closing" (the fake is shutting down)."""
        deadline = time.monotonic() + seconds
        while True:
            if self._closing.is_set():
                return "closing"
            left = deadline - time.monotonic()
            if left <= 0:
                return "elapsed"
            readable, _, _ = select.select([connection], [], [], min(left, 0.05))
            if readable:
                try:
                    peeked = connection.recv(1, socket.MSG_PEEK)
                except OSError:
                    return "gone"
                if not peeked:
                    return "gone"
                time.sleep(0.05)  # a pipelined request: nothing to do with it until we answer

    def close(self) -> None:
        self._closing.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
