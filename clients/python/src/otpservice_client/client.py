"""`Client` (blocking) and `AsyncClient` (asyncio): one method per route of the service's
client API, each on one pooled httpx client, with the retries described in `_calls`."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Self, TypeVar

import httpx

from otpservice_client import _calls
from otpservice_client._version import __version__
from otpservice_client.models import CheckResult, Signals, Verification

T = TypeVar("T")

USER_AGENT = f"otpservice-client/{__version__} (python)"


class Client:
    """A blocking client of one otpservice deployment.

    Args:
        base_url: where the service answers, such as "https://otp.example.com".
        api_key: the tenant's API key, sent as `Authorization: Bearer <key>`.
        timeout: seconds for each of connect, read, write and pool, per attempt (or an
            httpx.Timeout).
        max_retries: how many times one call may be repeated: after a 503 (honouring its
            Retry-After) and after transport errors that are safe to repeat. Never after a 429.
        max_retry_wait: seconds one call may spend waiting between attempts, in all; a
            Retry-After that would go past it is not waited for, the error is raised instead.
        transport: an httpx transport, such as httpx.MockTransport in tests.
        sleep: how to wait between attempts (tests pass a recorder).

    Use it as a context manager, or call `close()`: it holds a connection pool.
    """

    def __init__(
        self,
        base_url: str | httpx.URL,
        api_key: str,
        *,
        timeout: float | httpx.Timeout = _calls.DEFAULT_TIMEOUT,
        max_retries: int = _calls.DEFAULT_MAX_RETRIES,
        max_retry_wait: float = _calls.DEFAULT_MAX_RETRY_WAIT,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], object] = time.sleep,
    ) -> None:
        self._policy = _calls.RetryPolicy(max_retries, max_retry_wait)
        self._sleep = sleep
        self._http = httpx.Client(
            base_url=base_url,
            headers=_calls.base_headers(api_key, USER_AGENT),
            timeout=timeout,
            transport=transport,
        )

    def __repr__(self) -> str:
        return f"Client(base_url={str(self._http.base_url)!r})"

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def start(
        self,
        to: str,
        *,
        locale: str | None = None,
        app_hash: str | None = None,
        client_ref: str | None = None,
        signals: Signals | None = None,
        idempotency_key: str | bool | None = None,
    ) -> Verification:
        """Start a verification of `to` (E.164) and send it a code (`POST /otp/start`).

        For a number with a pending verification this resends on that one (same id), under
        the resend rules. `idempotency_key`: your key, or True for a new random one; with a
        key a repeated start (by you, or by the client after a lost answer) sends nothing
        again and returns the first answer with `replayed=True`.
        """
        return self._call(
            _calls.start(
                to,
                locale=locale,
                app_hash=app_hash,
                client_ref=client_ref,
                signals=signals,
                idempotency_key=idempotency_key,
            )
        )

    def verify(
        self,
        code: str,
        *,
        id: str | None = None,  # noqa: A002 - the service's own name for it
        to: str | None = None,
    ) -> CheckResult:
        """Check `code` against the verification `id`, or the pending one of number `to`
        (exactly one of them: ValueError otherwise, before any request)."""
        return self._call(_calls.verify(code, verification_id=id, to=to))

    def resend(self, id: str) -> Verification:  # noqa: A002 - the service's own name for it
        """Send a new code for verification `id`; the previous code stops working."""
        return self._call(_calls.resend(id))

    def cancel(self, id: str) -> Verification:  # noqa: A002 - the service's own name for it
        """Cancel the pending verification `id`."""
        return self._call(_calls.cancel(id))

    def get(self, id: str) -> Verification:  # noqa: A002 - the service's own name for it
        """Read verification `id` with its delivery events."""
        return self._call(_calls.get(id))

    def _call(self, call: _calls.Call[T]) -> T:
        attempt, waited = 0, 0.0
        while True:
            try:
                response = self._http.request(
                    call.method, call.path, content=call.body, headers=call.headers
                )
            except httpx.RequestError as exc:
                delay = self._policy.after_error(exc, call.transport_retry, attempt, waited)
                if delay is None:
                    raise _calls.transport_error(exc) from exc
            else:
                delay = self._policy.after_answer(response, attempt, waited)
                if delay is None:
                    return call.finish(response)
            self._sleep(delay)
            attempt, waited = attempt + 1, waited + delay


class AsyncClient:
    """The asyncio twin of `Client`: the same arguments (`sleep` is awaited and `transport`
    is an httpx.AsyncBaseTransport) and the same methods, awaited.

    Use it as an async context manager, or call `aclose()`.
    """

    def __init__(
        self,
        base_url: str | httpx.URL,
        api_key: str,
        *,
        timeout: float | httpx.Timeout = _calls.DEFAULT_TIMEOUT,
        max_retries: int = _calls.DEFAULT_MAX_RETRIES,
        max_retry_wait: float = _calls.DEFAULT_MAX_RETRY_WAIT,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    ) -> None:
        self._policy = _calls.RetryPolicy(max_retries, max_retry_wait)
        self._sleep = sleep
        self._http = httpx.AsyncClient(
            base_url=base_url,
            headers=_calls.base_headers(api_key, USER_AGENT),
            timeout=timeout,
            transport=transport,
        )

    def __repr__(self) -> str:
        return f"AsyncClient(base_url={str(self._http.base_url)!r})"

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def start(
        self,
        to: str,
        *,
        locale: str | None = None,
        app_hash: str | None = None,
        client_ref: str | None = None,
        signals: Signals | None = None,
        idempotency_key: str | bool | None = None,
    ) -> Verification:
        """See `Client.start`."""
        return await self._call(
            _calls.start(
                to,
                locale=locale,
                app_hash=app_hash,
                client_ref=client_ref,
                signals=signals,
                idempotency_key=idempotency_key,
            )
        )

    async def verify(
        self,
        code: str,
        *,
        id: str | None = None,  # noqa: A002 - the service's own name for it
        to: str | None = None,
    ) -> CheckResult:
        """See `Client.verify`."""
        return await self._call(_calls.verify(code, verification_id=id, to=to))

    async def resend(self, id: str) -> Verification:  # noqa: A002 - the service's own name for it
        return await self._call(_calls.resend(id))

    async def cancel(self, id: str) -> Verification:  # noqa: A002 - the service's own name for it
        return await self._call(_calls.cancel(id))

    async def get(self, id: str) -> Verification:  # noqa: A002 - the service's own name for it
        return await self._call(_calls.get(id))

    async def _call(self, call: _calls.Call[T]) -> T:
        attempt, waited = 0, 0.0
        while True:
            try:
                response = await self._http.request(
                    call.method, call.path, content=call.body, headers=call.headers
                )
            except httpx.RequestError as exc:
                delay = self._policy.after_error(exc, call.transport_retry, attempt, waited)
                if delay is None:
                    raise _calls.transport_error(exc) from exc
            else:
                delay = self._policy.after_answer(response, attempt, waited)
                if delay is None:
                    return call.finish(response)
            await self._sleep(delay)
            attempt, waited = attempt + 1, waited + delay
