"""A fake MessageFlow (REST v2.1) for the benchmark: a small raw ASGI app served by uvicorn.

    python bench/fake_provider_app.py --port 9000 --webhook-secret S [--dlr-delay 0.05]

- `POST /v2.1/sms` answers 200 with MessageFlow's envelope, keeps the last SMS text per number
  and, off the request path, posts a delivery report (`{"externalId", "status": "DELIVRD"}`) to
  the message's `webhookUrl` with HTTP Basic credentials `messageflow:<secret>`.
- `GET /inbox/{e164}` answers the last SMS text sent to that number (text/plain), 404 when none;
  `?wait=<seconds>` (at most 10) long-polls until one arrives, so a load generator needs no busy
  polling.
- `GET /stats` counters as JSON; `POST /control` `{"dlr": bool, "dlr_delay": seconds}`.

Raw ASGI rather than a framework: this process shares the machine's cores with the service under
test, so it should cost as little CPU per SMS as possible. Memory is bounded (the inbox keeps at
most MAX_INBOX numbers, the DLR queue at most MAX_DLR_QUEUE reports; overflow is counted).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import collections
import contextlib
import urllib.parse
from typing import Any

import httpx
import msgspec

MAX_INBOX = 400_000
MAX_DLR_QUEUE = 100_000
DLR_SENDERS = 16
MAX_WAIT_SECONDS = 10.0

_ENVELOPE = msgspec.json.encode(
    {"data": [{"status": "accepted"}], "errors": [], "meta": {"status": 200}}
)


class FakeMessageFlow:
    def __init__(self, webhook_secret: str, dlr_delay: float) -> None:
        token = base64.b64encode(f"messageflow:{webhook_secret}".encode()).decode()
        self.dlr_auth = f"Basic {token}"
        self.dlr_delay = dlr_delay
        self.dlr_enabled = True
        self.inbox: collections.OrderedDict[str, str] = collections.OrderedDict()
        self.waiters: dict[str, list[asyncio.Future[str]]] = {}
        self.stats = collections.Counter[str]()
        self.queue: asyncio.Queue[tuple[str, bytes]] | None = None
        self.scheduled = 0
        self.posting = 0
        self.client: httpx.AsyncClient | None = None
        self.senders: list[asyncio.Task[None]] = []

    # --- ASGI ---------------------------------------------------------------------------------

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        method, path = scope["method"], scope["path"]
        if method == "POST" and path == "/v2.1/sms":
            body = await _read_body(receive)
            status, payload = self._sms(scope, body)
            await _respond(send, status, payload, b"application/json")
        elif method == "GET" and path.startswith("/inbox/"):
            await self._inbox(scope, send, path.removeprefix("/inbox/"))
        elif method == "GET" and path == "/stats":
            stats = dict(self.stats)
            queued = self.queue.qsize() if self.queue else 0
            stats["dlr_queue"] = queued + self.scheduled + self.posting
            stats["inbox_numbers"] = len(self.inbox)
            await _respond(send, 200, msgspec.json.encode(stats), b"application/json")
        elif method == "POST" and path == "/control":
            control = msgspec.json.decode(await _read_body(receive))
            self.dlr_enabled = bool(control.get("dlr", self.dlr_enabled))
            self.dlr_delay = float(control.get("dlr_delay", self.dlr_delay))
            await _respond(send, 200, b"{}", b"application/json")
        else:
            await _respond(send, 404, b'{"error":"not found"}', b"application/json")

    async def _lifespan(self, receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self.queue = asyncio.Queue()
                self.client = httpx.AsyncClient(
                    timeout=5.0, limits=httpx.Limits(max_connections=DLR_SENDERS)
                )
                self.senders = [asyncio.create_task(self._post_dlrs()) for _ in range(DLR_SENDERS)]
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                for task in self.senders:
                    task.cancel()
                await asyncio.gather(*self.senders, return_exceptions=True)
                if self.client is not None:
                    await self.client.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return

    # --- MessageFlow --------------------------------------------------------------------------

    def _sms(self, scope: dict[str, Any], body: bytes) -> tuple[int, bytes]:
        headers = dict(scope["headers"])
        if not headers.get(b"authorization") or not headers.get(b"application-key"):
            self.stats["sms_unauthorized"] += 1
            return 401, b'{"data":[],"errors":[{"title":"Unauthorized","code":"401"}],"meta":{}}'
        try:
            sms = msgspec.json.decode(body)
            numbers = sms["phoneNumbers"]
            text = sms["message"]
        except (msgspec.DecodeError, KeyError, TypeError):
            self.stats["sms_bad_request"] += 1
            return 400, b'{"data":[],"errors":[{"title":"Bad request","code":"400"}],"meta":{}}'
        self.stats["sms"] += 1
        for number in numbers:
            self._deliver(number, text)
        webhook = sms.get("webhookUrl")
        if webhook and self.dlr_enabled and self.queue is not None:
            report = msgspec.json.encode({"externalId": sms.get("externalId"), "status": "DELIVRD"})
            if self.queue.qsize() + self.scheduled >= MAX_DLR_QUEUE:
                self.stats["dlr_dropped"] += 1
            else:
                self.scheduled += 1
                asyncio.get_running_loop().call_later(
                    self.dlr_delay, self._ready, (webhook, report)
                )
        return 200, _ENVELOPE

    def _deliver(self, number: str, text: str) -> None:
        self.inbox[number] = text
        self.inbox.move_to_end(number)
        while len(self.inbox) > MAX_INBOX:
            self.inbox.popitem(last=False)
        for waiter in self.waiters.pop(number, []):
            if not waiter.done():
                waiter.set_result(text)

    async def _inbox(self, scope: dict[str, Any], send: Any, raw_number: str) -> None:
        number = "+" + urllib.parse.unquote(raw_number).lstrip("+ ")
        text = self.inbox.get(number)
        if text is None:
            query = urllib.parse.parse_qs(scope.get("query_string", b"").decode())
            wait = min(float(query.get("wait", ["0"])[0] or 0), MAX_WAIT_SECONDS)
            if wait > 0:
                waiter: asyncio.Future[str] = asyncio.get_running_loop().create_future()
                self.waiters.setdefault(number, []).append(waiter)
                try:
                    async with asyncio.timeout(wait):
                        text = await waiter
                except TimeoutError:
                    waiters = self.waiters.get(number, [])
                    with contextlib.suppress(ValueError):
                        waiters.remove(waiter)
                    if not waiters:
                        self.waiters.pop(number, None)
        if text is None:
            await _respond(send, 404, b"no SMS for this number", b"text/plain")
            return
        await _respond(send, 200, text.encode(), b"text/plain; charset=utf-8")

    def _ready(self, item: tuple[str, bytes]) -> None:
        self.scheduled -= 1
        assert self.queue is not None
        self.queue.put_nowait(item)

    async def _post_dlrs(self) -> None:
        assert self.queue is not None
        assert self.client is not None
        headers = {"Authorization": self.dlr_auth, "Content-Type": "application/json"}
        while True:
            url, report = await self.queue.get()
            self.posting += 1
            try:
                response = await self.client.post(url, content=report, headers=headers)
                self.stats[f"dlr_{response.status_code}"] += 1
            except (httpx.HTTPError, OSError):
                self.stats["dlr_error"] += 1
            finally:
                self.posting -= 1
                self.queue.task_done()


async def _read_body(receive: Any) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


async def _respond(send: Any, status: int, body: bytes, content_type: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", content_type), (b"content-length", b"%d" % len(body))],
        }
    )
    await send({"type": "http.response.body", "body": body})


def main() -> None:
    import uvicorn  # noqa: PLC0415

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--webhook-secret", required=True)
    parser.add_argument("--dlr-delay", type=float, default=0.05)
    args = parser.parse_args()
    app = FakeMessageFlow(args.webhook_secret, args.dlr_delay)
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=args.port,
        loop="uvloop",
        http="httptools",
        lifespan="on",
        log_level="warning",
        access_log=False,
    )


if __name__ == "__main__":
    main()
