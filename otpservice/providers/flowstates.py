"""Flowstates REST gateway: POST {base}/messages/send; its message id keys the delivery reports."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from otpservice.errors import ProviderUnavailable
from otpservice.providers.base import (
    SmsMessage,
    SubmitReceipt,
    json_or_none,
    post_json,
    raise_for_status,
    scalar_text,
)

if TYPE_CHECKING:
    import httpx

_ID_KEYS = ("id", "message_id", "messageId")


class FlowstatesGateway:
    """One attempt per `submit`, authenticated with `Authorization: X-Api-key <key>`."""

    min_validity_seconds = 1  # takes no validity

    def __init__(
        self,
        client: httpx.AsyncClient,
        *,
        base_url: str,
        api_key: str,
        total_timeout: float,
        name: str = "flowstates",
    ) -> None:
        self.name = name
        self._client = client
        self._url = f"{base_url.rstrip('/')}/messages/send"
        self._headers = {"Authorization": f"X-Api-key {api_key}"}
        self._total_timeout = total_timeout

    def __repr__(self) -> str:
        return f"FlowstatesGateway(name={self.name!r}, url={self._url!r})"

    async def submit(self, message: SmsMessage) -> SubmitReceipt:
        # Flowstates takes no validity: the retry loop's deadline is the only bound on lateness.
        payload = {"to": message.to, "message": message.text, "sender": message.sender}
        response = await post_json(
            self._client,
            self._url,
            headers=self._headers,
            payload=payload,
            total_timeout=self._total_timeout,
        )
        return _read_answer(response, text=message.text)

    async def aclose(self) -> None:
        # The app builds one client per gateway and hands it over; this is where it is closed.
        await self._client.aclose()


def _read_answer(response: httpx.Response, *, text: str) -> SubmitReceipt:
    raise_for_status(response, text=text)
    if not response.content.strip():
        # An empty 2xx is an acceptance without an id (see below).
        return SubmitReceipt()
    body = json_or_none(response.content)
    if body is None:
        # A 2xx we cannot read may or may not be an acceptance. A retry risks a second SMS with
        # the same code; giving up risks no code at all and a locked-out user. The duplicate is
        # the cheaper mistake, so this is retried.
        raise ProviderUnavailable("malformed_response")
    # Without an id the send still counts as accepted (Flowstates took it), but its delivery
    # reports cannot be matched: the delivery stays `submitted` and an undelivered SMS will not
    # unlock an early resend. Better than resending a code that is probably on its way.
    return SubmitReceipt(provider_message_id=_message_id(body), provider_status=_status(body))


def _records(body: Any) -> list[dict[str, Any]]:
    """Where an id may sit: the top level, then `data` as an object or first list element."""
    found: list[dict[str, Any]] = []
    for level in (body, body.get("data") if isinstance(body, dict) else None):
        first = level[0] if isinstance(level, list) and level else level
        if isinstance(first, dict):
            found.append(first)
    return found


def _message_id(body: Any) -> str | None:
    for record in _records(body):
        for key in _ID_KEYS:
            if (value := scalar_text(record.get(key))) is not None:
                return value
    return None


def _status(body: Any) -> str | None:
    for record in _records(body):
        if (value := scalar_text(record.get("status"))) is not None:
            return value
    return None
