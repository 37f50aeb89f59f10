"""What both clients share, without I/O: each route's request, the retry decisions, and
turning an answer into a model or an error. `Client` and `AsyncClient` only send and sleep."""

from __future__ import annotations

import enum
import random
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar
from urllib.parse import quote

import httpx
import msgspec

from otpservice_client import errors
from otpservice_client.models import CheckResult, Signals, Verification

T = TypeVar("T")

DEFAULT_TIMEOUT = 10.0
"""Seconds for each of connect, read, write and pool, per attempt."""
DEFAULT_MAX_RETRIES = 2
DEFAULT_MAX_RETRY_WAIT = 30.0
"""Seconds one call may spend waiting between its attempts, in all."""
_FALLBACK_RETRY_AFTER = 1
"""A 503 without Retry-After (a proxy's, say) is retried after this many seconds."""
_BACKOFF_FIRST, _BACKOFF_MAX = 0.5, 4.0
"""Waits after a transport error: 0.5 s, 1 s, 2 s, ... at most 4 s, each with jitter."""
MAX_IDEMPOTENCY_KEY_LENGTH = 255


class TransportRetry(enum.Enum):
    """Which transport errors a call may be repeated after."""

    UNSENT = "unsent"
    """Only errors raised before the request left (connect failures, pool timeouts): the
    service never saw it, so repeating it cannot do anything twice. Every call."""
    ANY = "any"
    """Also errors after the request may have arrived (read timeout, reset): only for calls
    that are safe to repeat."""


# Raised before a byte of the request is sent: the service has not seen the call.
_UNSENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
# Raised once the request may have arrived: repeating it repeats whatever it did.
_MAYBE_SENT = (httpx.NetworkError, httpx.TimeoutException, httpx.RemoteProtocolError)


@dataclass(frozen=True)
class RetryPolicy:
    max_retries: int = DEFAULT_MAX_RETRIES
    max_wait: float = DEFAULT_MAX_RETRY_WAIT

    def __post_init__(self) -> None:
        if self.max_retries < 0:
            raise ValueError("max_retries must be 0 or more")
        if self.max_wait < 0:
            raise ValueError("max_retry_wait must be 0 or more")

    def after_answer(self, response: httpx.Response, attempt: int, waited: float) -> float | None:
        """Seconds to wait before repeating a call that got `response`, or None to stop.

        Only 503s are repeated, on every route: the service refused the call, saying when to
        come back. Both codes almost always mean the call changed nothing (`overloaded` is
        mostly answered before any work; `service_unavailable` when the store did not answer).
        The exception is a store step that ran while its answer was lost (a timeout): the
        repeat then gets what any second call would (resend_too_soon; verification_not_found
        after an approval). A 429 never is repeated: whether and when to try again is the
        caller's decision, often the end user's."""
        if response.status_code != 503:
            return None
        retry_after = errors.parse_retry_after(response.headers.get("retry-after"))
        delay = _FALLBACK_RETRY_AFTER if retry_after is None else retry_after
        return self._within_budget(float(delay), attempt, waited)

    def after_error(
        self, exc: httpx.RequestError, retry: TransportRetry, attempt: int, waited: float
    ) -> float | None:
        """Seconds to wait before repeating a call that failed with `exc`, or None to stop."""
        if isinstance(exc, _UNSENT) or (
            retry is TransportRetry.ANY and isinstance(exc, _MAYBE_SENT)
        ):
            ceiling = min(_BACKOFF_MAX, _BACKOFF_FIRST * 2**attempt)
            # Jitter, not a secret: spreads out clients that lost the service at the same moment.
            delay = random.uniform(ceiling / 2, ceiling)  # noqa: S311
            return self._within_budget(delay, attempt, waited)
        return None

    def _within_budget(self, delay: float, attempt: int, waited: float) -> float | None:
        if attempt >= self.max_retries or waited + delay > self.max_wait:
            return None
        return delay


@dataclass(frozen=True)
class Call(Generic[T]):
    """One route's request and how to read its answer."""

    method: str
    path: str
    finish: Callable[[httpx.Response], T]
    body: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    transport_retry: TransportRetry = TransportRetry.UNSENT


def base_headers(api_key: str, user_agent: str) -> dict[str, str]:
    if not api_key or not api_key.isascii() or not api_key.isprintable():
        raise ValueError("api_key must be a non-empty string of printable ASCII characters")
    return {
        "Authorization": f"Bearer {api_key}",
        "Accept": "application/json, application/problem+json",
        "User-Agent": user_agent,
    }


def new_idempotency_key() -> str:
    """A fresh random Idempotency-Key for `start`: reuse it when you repeat the same start
    (after a timeout, say) and the service replays its first answer instead of sending again."""
    return "idem_" + secrets.token_urlsafe(24)


def _decoder(kind: type[T]) -> Callable[[httpx.Response], T]:
    decoder = msgspec.json.Decoder(kind)

    def finish(response: httpx.Response) -> T:
        if not response.is_success:
            raise errors.from_response(response.status_code, response.headers, response.content)
        try:
            return decoder.decode(response.content)
        except msgspec.MsgspecError as exc:
            # msgspec names the field and the expected type, never a value.
            raise errors.UnexpectedResponse(
                f"the answer is not a {kind.__name__}: {exc}", status=response.status_code
            ) from None

    return finish


_verification = _decoder(Verification)
_check_result = _decoder(CheckResult)


def _started(response: httpx.Response) -> Verification:
    verification = _verification(response)
    if response.headers.get("idempotent-replayed", "").strip().lower() == "true":
        return msgspec.structs.replace(verification, replayed=True)
    return verification


def _json(body: dict[str, object]) -> tuple[bytes, dict[str, str]]:
    return msgspec.json.encode(body), {"Content-Type": "application/json"}


def _path_id(verification_id: str) -> str:
    if not verification_id:
        raise ValueError("a verification id must not be empty")
    return quote(verification_id, safe="")


def start(
    to: str,
    *,
    locale: str | None,
    app_hash: str | None,
    client_ref: str | None,
    signals: Signals | None,
    idempotency_key: str | bool | None,
) -> Call[Verification]:
    fields: dict[str, object] = {"to": to}
    optional = {"locale": locale, "app_hash": app_hash, "client_ref": client_ref}
    fields.update({name: value for name, value in optional.items() if value is not None})
    if signals is not None and signals != Signals():
        fields["signals"] = signals
    body, headers = _json(fields)
    key: str | None = None
    if idempotency_key is True:
        key = new_idempotency_key()
    elif isinstance(idempotency_key, str):
        key = idempotency_key
    if key is None:
        # Without a key a repeated start is a second start: the service may send a second SMS
        # (or, the first having arrived, answer resend_too_soon for a send that did happen).
        # So it is repeated only after errors that prove the first never reached the service.
        return Call("POST", "/otp/start", _started, body, headers, TransportRetry.UNSENT)
    if not 0 < len(key) <= MAX_IDEMPOTENCY_KEY_LENGTH or not key.isascii() or not key.isprintable():
        raise ValueError(
            f"idempotency_key must be 1 to {MAX_IDEMPOTENCY_KEY_LENGTH} printable ASCII characters"
        )
    # With a key the service answers a repeat with the first answer and sends nothing again:
    # safe to repeat after any transport error, with the same key.
    headers["Idempotency-Key"] = key
    return Call("POST", "/otp/start", _started, body, headers, TransportRetry.ANY)


def verify(code: str, *, verification_id: str | None, to: str | None) -> Call[CheckResult]:
    if (verification_id is None) == (to is None):
        # Never the code in a message: it is a secret of the end user.
        raise ValueError("verify() takes exactly one of id= and to=")
    fields: dict[str, object] = {"code": code}
    if verification_id is not None:
        fields["id"] = verification_id
    else:
        fields["to"] = to
    body, headers = _json(fields)
    # A check that may have arrived used an attempt (or approved): not repeated.
    return Call("POST", "/otp/verify", _check_result, body, headers, TransportRetry.UNSENT)


def resend(verification_id: str) -> Call[Verification]:
    return Call("POST", f"/otp/{_path_id(verification_id)}/resend", _verification)


def cancel(verification_id: str) -> Call[Verification]:
    return Call("POST", f"/otp/{_path_id(verification_id)}/cancel", _verification)


def get(verification_id: str) -> Call[Verification]:
    # A read changes nothing: safe to repeat after any transport error.
    return Call(
        "GET",
        f"/otp/{_path_id(verification_id)}",
        _verification,
        transport_retry=TransportRetry.ANY,
    )


def transport_error(exc: httpx.RequestError) -> errors.TransportError:
    # httpx's messages name the failure ("[Errno 111] Connection refused"), never the body.
    return errors.TransportError(f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)
