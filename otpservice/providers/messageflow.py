"""MessageFlow REST v2.1 gateway: the priority channel (MessageFlow Priority) codes leave by."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from otpservice.errors import ProviderRejected, ProviderUnavailable
from otpservice.providers.base import (
    SmsMessage,
    SubmitReceipt,
    error_details,
    json_or_none,
    post_json,
    raise_for_status,
    scalar_text,
)

if TYPE_CHECKING:
    import httpx


class MessageFlowGateway:
    """One attempt per `submit`: POST {base}/v2.1/sms with the priority channel's credentials."""

    min_validity_seconds = 60  # `validity` is in whole minutes

    def __init__(
        self,
        client: httpx.AsyncClient,
        *,
        base_url: str,
        api_key: str,
        app_key: str,
        total_timeout: float,
        name: str = "messageflow",
    ) -> None:
        self.name = name
        self._client = client
        self._url = f"{base_url.rstrip('/')}/v2.1/sms"
        # Raw values, no scheme: that is what MessageFlow expects in both headers.
        self._headers = {"Authorization": api_key, "Application-Key": app_key}
        self._total_timeout = total_timeout

    def __repr__(self) -> str:
        return f"MessageFlowGateway(name={self.name!r}, url={self._url!r})"

    async def submit(self, message: SmsMessage) -> SubmitReceipt:
        # MessageFlow counts validity in whole minutes. Rounding up would let the SMS arrive
        # after the code expired, so round down. The retry loop never sends less than a minute
        # (min_validity_seconds); this guards a direct call.
        validity_minutes = message.validity_seconds // 60
        if validity_minutes <= 0:
            raise ProviderUnavailable("expired", message="less than a minute of validity left")
        payload: dict[str, Any] = {
            "sender": message.sender,
            "message": message.text,
            "phoneNumbers": [message.to],
            "validity": validity_minutes,
            "type": 0,
            "externalId": message.external_id,
        }
        if message.webhook_url is not None:
            payload["webhookUrl"] = message.webhook_url
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
    body = json_or_none(response.content)
    if not isinstance(body, dict):
        # A 2xx we cannot read (a proxy's HTML page, a truncated body) may or may not have been
        # accepted. Retrying risks a second SMS carrying the same code; giving up risks the user
        # getting no code at all and being locked out of the login. The duplicate is the
        # cheaper mistake, so it counts as unavailable, not rejected.
        raise ProviderUnavailable("malformed_response")
    errors = body.get("errors")
    if errors:
        # The envelope reports refusals with a 2xx too: an error in it is a rejection.
        code, detail = error_details(body, text=text)
        raise ProviderRejected("provider_error", code=code, message=detail)
    return SubmitReceipt(provider_message_id=None, provider_status=_accepted_status(body))


def _accepted_status(body: dict[str, Any]) -> str | None:
    meta = body.get("meta")
    if isinstance(meta, dict) and (status := scalar_text(meta.get("status"))) is not None:
        return status
    data = body.get("data")
    if isinstance(data, list) and data and isinstance(data[0], dict):
        return scalar_text(data[0].get("status"))
    return None
