"""The benchmark's fake SMS provider: tests/support/fake_provider.py, plus the arrival times the
overload phase needs.

    python bench/provider.py --port 9000 --webhook-secret S

Everything is the shared fake's (`POST /v2.1/sms`, `GET /inbox/{e164}`, `/stats`, `/control`),
served the same way (uvicorn, uvloop, httptools). Two routes are added:

- `POST /bench/arrivals` `{"record": bool}`: start (or stop) recording every SMS, forgetting
  those recorded so far. The fake then keeps each request (its `keep_requests` mode), which costs
  a little CPU and memory per SMS: it is on only during the overload phase.
- `GET /bench/arrivals`: `[[number, arrived], ...]` for every SMS the fake accepted since
  recording began, `arrived` being the wall-clock time (time.time()) it read the request: the
  load generator runs on this machine too, so the two clocks compare.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import msgspec  # noqa: E402

from tests.support.fake_provider import (  # noqa: E402
    ACCEPTED,
    FakeProvider,
    Inbox,
    Receive,
    Scope,
    Send,
    serve,
)

MAX_RECORDED = 200_000
"""Recording stops by itself past this many SMS: memory stays bounded whatever happens."""


class ArrivalsApp:
    """The fake, with the two /bench/arrivals routes in front of it."""

    def __init__(self, fake: FakeProvider) -> None:
        self.fake = fake

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == "/bench/arrivals":
            if scope["method"] == "POST":
                body = b""
                more = True
                while more:
                    message = await receive()
                    body += message.get("body", b"")
                    more = bool(message.get("more_body"))
                self.fake.inbox = Inbox()
                self.fake.keep_requests = bool(msgspec.json.decode(body).get("record"))
                await _json(send, {"recording": self.fake.keep_requests})
            else:
                sms = self.fake.inbox.snapshot()
                if len(sms) >= MAX_RECORDED:
                    self.fake.keep_requests = False
                await _json(send, [[s.to, s.arrived] for s in sms if s.outcome == ACCEPTED])
            return
        if self.fake.keep_requests and len(self.fake.inbox.sms) >= MAX_RECORDED:
            self.fake.keep_requests = False
        await self.fake(scope, receive, send)


async def _json(send: Send, value: Any) -> None:
    body = msgspec.json.encode(value)
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--webhook-secret", default="")
    parser.add_argument("--dlr-delay", type=float, default=0.05)
    args = parser.parse_args()
    fake = FakeProvider(
        port=args.port,
        webhook_secret=args.webhook_secret,
        dlr_delay=args.dlr_delay,
        keep_requests=False,
    )
    serve(ArrivalsApp(fake), args.port)


if __name__ == "__main__":
    main()
