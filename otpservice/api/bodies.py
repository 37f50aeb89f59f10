"""Request bodies of the JSON routes, read strictly: one meaning for every byte a client sends.

A proxy or WAF in front of the service reads the same body: if it and the service could see
different requests in it, one of them is fooled. So a JSON route takes `application/json` only
(415 otherwise, before the body is read), and refuses a duplicated key (which most parsers read
as its last value, some as its first), non-UTF-8 text, NaN and Infinity, and nesting deep enough
to exhaust a parser's stack: each is a 400. The body is read only after the API key was checked
(api/auth.py's guard runs first).
"""

from __future__ import annotations

import json
from typing import Any

from litestar import Request

from otpservice.errors import InvalidRequest, UnsupportedMediaType

JSON_MEDIA_TYPE = "application/json"
MAX_DEPTH = 16
"""No request of the API nests deeper than a few levels; this leaves room and bounds the work."""


class _DuplicateKey(ValueError):
    pass


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for key, value in pairs:
        if key in found:
            raise _DuplicateKey(key)
        found[key] = value
    return found


def _constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _too_deep(body: bytes) -> bool:
    """Nesting beyond MAX_DEPTH, counted outside strings; linear, without recursion."""
    depth = 0
    in_string = escaped = False
    for byte in body:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:  # "
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):  # [ {
            depth += 1
            if depth > MAX_DEPTH:
                return True
        elif byte in (0x5D, 0x7D):
            depth -= 1
    return False


def decode_strict_json(body: bytes) -> Any:
    """The JSON value of `body`, or InvalidRequest saying why it is not one."""
    if _too_deep(body):
        raise InvalidRequest(f"The request body nests deeper than {MAX_DEPTH} levels.")
    try:
        text = body.decode("utf-8")
        return json.loads(text, object_pairs_hook=_object, parse_constant=_constant)
    except _DuplicateKey as exc:
        raise InvalidRequest(f"The request body names the key `{exc}` twice.") from None
    except (ValueError, RecursionError):
        raise InvalidRequest("The request body is not valid JSON.") from None


def media_type(content_type: str | None) -> str:
    return (content_type or "").partition(";")[0].strip().lower()


class StrictJSONRequest(Request[Any, Any, Any]):
    """The request class of the JSON routes: `json()` is read as this module says."""

    async def json(self) -> Any:
        if media_type(self.headers.get("content-type")) != JSON_MEDIA_TYPE:
            raise UnsupportedMediaType(
                "Send the request body as JSON with 'Content-Type: application/json'."
            )
        return decode_strict_json(await self.body())
