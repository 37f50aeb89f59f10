"""ASGI apps served by uvicorn on 127.0.0.1 inside the test process: in the caller's event loop
(`serving`) or in a thread with its own loop (`ThreadedServer`), each bounded in time to start and
to stop."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import AsyncIterator
from types import TracebackType
from typing import Any, Self

import uvicorn

START_TIMEOUT = 10.0
GRACEFUL_SHUTDOWN = 5
"""Seconds requests still in flight get when the server stops; then uvicorn cancels them."""


def _config(app: Any, port: int) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN,
    )


@contextlib.asynccontextmanager
async def serving(app: Any, port: int) -> AsyncIterator[uvicorn.Server]:
    """Run an ASGI app on 127.0.0.1:port in this event loop, for the duration of the block."""
    server = uvicorn.Server(_config(app, port))
    task = asyncio.create_task(server.serve())
    deadline = time.monotonic() + START_TIMEOUT
    try:
        while not server.started:
            if task.done():
                task.result()  # the start's own error, if it raised one
                raise RuntimeError(f"the server on port {port} exited at start")
            if time.monotonic() > deadline:
                raise RuntimeError(f"the server on port {port} did not start in {START_TIMEOUT} s")
            await asyncio.sleep(0.01)
        yield server
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, timeout=GRACEFUL_SHUTDOWN + START_TIMEOUT)


class ThreadedServer:
    """An ASGI app on 127.0.0.1:port, served from a thread of this process with its own event
    loop: usable from synchronous code, and it answers while the caller's loop is busy."""

    def __init__(self, app: Any, port: int, name: str = "asgi") -> None:
        self.port = port
        self.name = name
        self.server = uvicorn.Server(_config(app, port))
        self.loop: asyncio.AbstractEventLoop | None = None
        self._failure: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=f"{name}-{port}", daemon=True)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self.loop = loop
        try:
            loop.run_until_complete(self.server.serve())
        except BaseException as exc:  # reported by start(), in the caller's thread
            self._failure = exc
        finally:
            loop.close()

    def start(self) -> None:
        self._thread.start()
        deadline = time.monotonic() + START_TIMEOUT
        while not self.server.started:
            if not self._thread.is_alive():
                raise RuntimeError(f"{self.name} on port {self.port} exited at start") from (
                    self._failure
                )
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"{self.name} on port {self.port} did not start")
            time.sleep(0.01)

    def call_soon(self, callback: Any, *args: Any) -> None:
        """Run `callback(*args)` in the server's loop (thread-safe); nothing when it has ended."""
        loop = self.loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # closed in between
                loop.call_soon_threadsafe(callback, *args)

    def stop(self) -> None:
        self.server.should_exit = True
        if self._thread.ident is None:  # never started
            return
        self._thread.join(timeout=GRACEFUL_SHUTDOWN + START_TIMEOUT)
        if self._thread.is_alive():
            raise RuntimeError(f"{self.name} on port {self.port} did not stop")
