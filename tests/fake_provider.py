"""A local HTTP server speaking MessageFlow's and Flowstates' APIs, posting DLRs back over HTTP."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import msgspec
import uvicorn
from litestar import Litestar, Request, Response, post

from tests.redis_server import free_port


class Received(msgspec.Struct):
    api: str
    headers: dict[str, str]
    body: dict[str, Any]
    at: float


class FakeProvider:
    """Scripted answers: `answers` is consumed one per request (status code), then 200s."""

    def __init__(self, *, dlr_status: str | None = "DELIVRD") -> None:
        self.port = free_port()
        self.received: list[Received] = []
        self.answers: list[int] = []
        self.dlr_status = dlr_status
        self.flowstates_webhook: str | None = None
        self.webhook_secret = ""
        self._ids = itertools.count(1)
        self._tasks: set[asyncio.Task[None]] = set()
        self._client = httpx.AsyncClient(timeout=5)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def app(self) -> Litestar:
        @post("/v2.1/sms", status_code=200)
        async def messageflow(request: Request[Any, Any, Any]) -> Response[Any]:
            body = await request.json()
            self.received.append(
                Received("messageflow", dict(request.headers), body, time.monotonic())
            )
            status = self.answers.pop(0) if self.answers else 200
            if status == 400:
                return Response(
                    {
                        "data": [],
                        "errors": [
                            {"title": "Bad number", "message": "invalid", "code": "ERR_NUMBER"}
                        ],
                        "meta": {"status": 400},
                    },
                    status_code=400,
                )
            if status != 200:
                return Response({"errors": [{"title": "busy", "code": "E500"}]}, status_code=status)
            if self.dlr_status and body.get("webhookUrl"):
                # MessageFlow posts with the Basic credentials set in its panel.
                token = base64.b64encode(f"messageflow:{self.webhook_secret}".encode()).decode()
                self._later(
                    body["webhookUrl"],
                    {"externalId": body["externalId"], "status": self.dlr_status},
                    f"Basic {token}",
                )
            return Response(
                {"data": [{"status": "accepted"}], "errors": [], "meta": {"status": 200}},
                status_code=200,
            )

        @post("/messages/send", status_code=201)
        async def flowstates(request: Request[Any, Any, Any]) -> Response[Any]:
            body = await request.json()
            self.received.append(
                Received("flowstates", dict(request.headers), body, time.monotonic())
            )
            status = self.answers.pop(0) if self.answers else 201
            if status >= 300:
                return Response({"error": "unavailable"}, status_code=status)
            message_id = f"fs-{next(self._ids)}"
            if self.dlr_status and self.flowstates_webhook:
                self._later(
                    self.flowstates_webhook,
                    {"messageId": message_id, "status": self.dlr_status},
                    f"Bearer {self.webhook_secret}",
                )
            return Response({"id": message_id, "status": "queued"}, status_code=201)

        return Litestar([messageflow, flowstates])

    def _later(self, url: str, report: dict[str, Any], authorization: str) -> None:
        async def post_report() -> None:
            await asyncio.sleep(0.05)
            await self._client.post(url, json=report, headers={"Authorization": authorization})

        task = asyncio.create_task(post_report())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._client.aclose()


@contextlib.asynccontextmanager
async def serving(app: Any, port: int) -> AsyncIterator[uvicorn.Server]:
    """Run an ASGI app on 127.0.0.1:port in this event loop, for the duration of the block."""
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    deadline = time.monotonic() + 10
    while not server.started:
        if task.done() or time.monotonic() > deadline:
            raise RuntimeError("server did not start")
        await asyncio.sleep(0.01)
    try:
        yield server
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, timeout=10)
