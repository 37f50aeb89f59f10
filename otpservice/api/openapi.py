"""The OpenAPI document: every error each route can answer, with its problem `code`s, its
headers, and what Litestar cannot say from the handlers alone.

Routes declare their errors with `errors(...)` (the codes they can answer); Litestar builds
the document from the handlers and wire types; `refine` then adds, once at start-up, the
parts a decorator cannot carry: the `code` each error response can hold, `Retry-After` and
`Idempotent-Replayed`, "exactly one of id and to", and the body the delivery-report webhooks
take. `tests/integration/test_openapi.py` holds the document to what the server does.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator
from typing import Any

import msgspec
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import Example

from otpservice import errors
from otpservice.api.problems import PROBLEM_TYPE


def _problem_classes(root: type[errors.OtpError]) -> Iterator[type[errors.OtpError]]:
    for cls in root.__subclasses__():
        yield cls
        yield from _problem_classes(cls)


_CODES: dict[str, tuple[int, str]] = {
    cls.code: (cls.status, cls.title) for cls in _problem_classes(errors.OtpError) if cls.code
}
# Answered by the router itself (api/problems.py), not raised by the service's code.
_CODES.update(
    {
        "method_not_allowed": (405, "Method not allowed"),
        "internal_error": (500, "Internal error"),
    }
)


class Problem(msgspec.Struct, frozen=True):
    """RFC 9457 problem details with the service's stable machine-readable `code`."""

    type: str
    """`urn:otpservice:problem:` followed by `code`."""
    title: str
    status: int
    detail: str
    """What happened, for people; never a code, a secret or a full phone number."""
    code: str
    """Stable and machine-readable: one of the codes listed in the schema's enum."""


_WHEN = {
    "invalid_request": "the body is not JSON of the expected shape",
    "invalid_phone_number": "`to` is not a valid number (the reason is in `detail`)",
    "invalid_code_format": "the code is not the tenant's number of digits; no attempt is used",
    "unauthorized": "no API key, or a wrong one",
    "destination_not_allowed": "the tenant's policy refuses this country or number type",
    "verification_not_found": "unknown, expired, finished or another tenant's",
    "idempotency_conflict": "the Idempotency-Key was used with another body, or is in use",
    "payload_too_large": "the body is over the limit",
    "unsupported_media_type": "the body is not sent as application/json",
    "rate_limited": "a limit was reached (its scope is in `detail`); see Retry-After",
    "resend_too_soon": "the resend cooldown is running; see Retry-After",
    "max_sends_reached": "the verification used all its sends; see Retry-After",
    "service_unavailable": "the store cannot be reached; see Retry-After",
    "overloaded": "this process is overloaded and refused the request at once; see Retry-After",
    "not_found": "no webhook is configured for this provider here",
    "fraud_suspected": "the fraud guard refused to send here for now; `detail` names the rule"
    " and its figures (for your logs, not for end users); see Retry-After",
}


def errors_for(*codes: str) -> dict[int, ResponseSpec]:
    """The error responses of a route that can answer these problem codes."""
    by_status: dict[int, list[str]] = {}
    for code in codes:
        by_status.setdefault(_CODES[code][0], []).append(code)
    return {
        status: ResponseSpec(
            data_container=Problem,
            description="; ".join(f"`{code}`: {_WHEN[code]}" for code in found),
            media_type="application/problem+json",
            generate_examples=False,
            examples=[Example(summary=code, value=example_problem(code)) for code in found],
        )
        for status, found in sorted(by_status.items())
    }


def example_problem(code: str) -> dict[str, Any]:
    status, title = _CODES[code]
    return {
        "type": PROBLEM_TYPE + code,
        "title": title,
        "status": status,
        "detail": title,
        "code": code,
    }


# --- refine: what the decorators cannot say -----------------------------------------------------

_RETRY_AFTER = {
    "description": "Seconds to wait before trying again.",
    "schema": {"type": "integer", "minimum": 1},
    "required": True,
}
_REPORT = {
    "type": "object",
    "description": "One delivery report as the provider writes it. Key names are matched in any"
    " case; unknown keys are ignored. MessageFlow names the message by the `externalId` the"
    " service sent, Flowstates by its own message id.",
    "properties": {
        "externalId": {"type": "string", "examples": ["<reference>-1"]},
        "messageId": {"type": "string"},
        "status": {
            "type": ["string", "integer"],
            "description": "Delivered / Undelivered / Expired (any case), an SMPP stat word"
            " (DELIVRD, UNDELIV, EXPIRED, REJECTD, ...) or a Kannel DLR code; anything else is"
            " recorded as `unknown`.",
            "examples": ["DELIVRD"],
        },
        "errorCode": {"type": ["string", "integer"], "examples": ["034"]},
        "timestamp": {"type": "string"},
    },
    "additionalProperties": True,
}


def refine(document: dict[str, Any]) -> None:
    """Complete the document Litestar built (in place)."""
    for methods in document.get("paths", {}).values():
        for operation in methods.values():
            _narrow_problem_codes(operation)
    start = document["paths"]["/otp/start"]["post"]
    start["responses"]["201"].setdefault("headers", {})["Idempotent-Replayed"] = {
        "description": "`true` when this is the stored response of an earlier request with the"
        " same Idempotency-Key and body: nothing was sent this time.",
        "schema": {"type": "string", "enum": ["true"]},
    }
    schemas = document["components"]["schemas"]
    schemas["Problem"]["properties"]["code"]["enum"] = sorted(_CODES)
    for schema in schemas.values():
        for prop in schema.get("properties", {}).values():
            _constraints_inside_the_string_branch(prop)
    _verify_request_by_id_or_number(schemas)
    schemas["DeliveryReport"] = _REPORT
    document["webhooks"] = _event_webhooks(schemas)
    reports = document["paths"]["/webhooks/{provider}"]["post"]
    reports["requestBody"] = {
        "required": True,
        "description": "One report, a list of them, or either wrapped in `data`; at most 256 KiB.",
        "content": {
            "application/json": {
                "schema": {
                    "oneOf": [
                        {"$ref": "#/components/schemas/DeliveryReport"},
                        {"type": "array", "items": {"$ref": "#/components/schemas/DeliveryReport"}},
                        {
                            "type": "object",
                            "required": ["data"],
                            "properties": {
                                "data": {
                                    "oneOf": [
                                        {"$ref": "#/components/schemas/DeliveryReport"},
                                        {
                                            "type": "array",
                                            "items": {
                                                "$ref": "#/components/schemas/DeliveryReport"
                                            },
                                        },
                                    ]
                                }
                            },
                        },
                    ]
                },
                "example": {"externalId": "<reference>-1", "status": "DELIVRD"},
            },
            "application/x-www-form-urlencoded": {
                "schema": {"$ref": "#/components/schemas/DeliveryReport"}
            },
        },
    }


_STRING_KEYWORDS = ("format", "pattern", "minLength", "maxLength")


def _constraints_inside_the_string_branch(prop: dict[str, Any]) -> None:
    """Litestar writes an optional string as `oneOf: [string, null]` with its format and
    lengths beside the oneOf; generators then lose them (a date-time becomes a str). They
    belong to the string branch."""
    branches = prop.get("oneOf", [])
    string = next((b for b in branches if b.get("type") == "string"), None)
    if string is None or not any(b.get("type") == "null" for b in branches):
        return
    for keyword in _STRING_KEYWORDS:
        if keyword in prop:
            string[keyword] = prop.pop(keyword)


def _verify_request_by_id_or_number(schemas: dict[str, Any]) -> None:
    """Exactly one of `id` and `to`, as two schemas a generator can type (VerifyById |
    VerifyByNumber) rather than a oneOf of bare `required` clauses beside the properties."""
    found = schemas["VerifyRequest"]
    code = found["properties"]["code"]

    def by(field: str, title: str) -> dict[str, Any]:
        prop = dict(found["properties"][field])
        string = next(b for b in prop.pop("oneOf") if b.get("type") == "string")
        return {
            "type": "object",
            "title": title,
            "properties": {"code": code, field: {**string, **prop}},
            "required": ["code", field],
            "additionalProperties": False,
        }

    schemas["VerifyById"] = by("id", "VerifyById")
    schemas["VerifyByNumber"] = by("to", "VerifyByNumber")
    schemas["VerifyRequest"] = {
        "title": "VerifyRequest",
        "description": "The code, and exactly one of `id` (the verification's) and `to` (the"
        " number's pending verification).",
        "oneOf": [
            {"$ref": "#/components/schemas/VerifyById"},
            {"$ref": "#/components/schemas/VerifyByNumber"},
        ],
    }


_EVENTS = {
    "verification.approved": "A right code approved the verification.",
    "verification.failed": "Wrong codes used up the verification's attempts.",
    "verification.expired": "The code expired unverified (sent within a minute of the expiry).",
    "verification.canceled": "The verification was canceled.",
    "delivery.updated": "An SMS's delivery status changed (`data.delivery_event` says how, with"
    " the provider's status and error code).",
    "fraud.blocked": "The fraud guard blocked a prefix or an end user's IP (`data.block`; no"
    " verification).",
}
_EVENT_ID_EXAMPLE = "evt_s07_1764583200000_12"
_SIGNATURE_HEADERS = [
    ("webhook-id", "The event's id, the same on every attempt: de-duplicate by it."),
    ("webhook-timestamp", "Seconds since the epoch when this attempt was signed."),
    (
        "webhook-signature",
        (
            "`v1,<base64 HMAC-SHA256 of '<webhook-id>.<webhook-timestamp>.<body>'>` under the"
            " tenant's events_secret (Standard Webhooks: check it with the `standardwebhooks`"
            " library)."
        ),
    ),
]


def _event_webhooks(schemas: dict[str, Any]) -> dict[str, Any]:
    """The tenant event webhooks (events.py), as OpenAPI 3.1 `webhooks`."""
    verification = copy.deepcopy(schemas["Verification"])
    verification["title"] = "VerificationEventData"
    verification["description"] = (
        "The Verification as it was when the event happened, without its delivery events."
    )
    delivery = copy.deepcopy(schemas["DeliveryOut"])
    delivery["properties"].pop("events", None)
    delivery["required"] = [r for r in delivery.get("required", []) if r != "events"]
    verification["properties"]["delivery"] = delivery
    schemas["VerificationEventData"] = verification
    data_ref = {"$ref": "#/components/schemas/VerificationEventData"}
    data = {
        **dict.fromkeys(_EVENTS, data_ref),
        "delivery.updated": {
            "allOf": [
                data_ref,
                {
                    "type": "object",
                    "required": ["delivery_event"],
                    "properties": {
                        "delivery_event": {"$ref": "#/components/schemas/DeliveryEventOut"}
                    },
                },
            ]
        },
        "fraud.blocked": {
            "type": "object",
            "required": ["block"],
            "properties": {"block": {"$ref": "#/components/schemas/FraudBlockOut"}},
        },
    }
    out = {}
    for kind, summary in _EVENTS.items():
        body = {
            "type": "object",
            "required": ["id", "type", "created_at", "data"],
            "properties": {
                "id": {
                    "type": "string",
                    "pattern": "^evt_",
                    "examples": ["evt_s07_1764583200000_12"],
                },
                "type": {"type": "string", "const": kind},
                "created_at": {"type": "string", "format": "date-time"},
                "data": data[kind],
            },
        }
        out[kind] = {
            "post": {
                "summary": summary,
                "operationId": "on" + "".join(p.title() for p in re.split(r"[._]", kind)),
                "description": "POSTed to the tenant's events_url at least once: retried with"
                " backoff (at most OTP_EVENTS_RETRY_MAX_SECONDS apart) for 24 h until a 2xx.",
                "parameters": [
                    {
                        "name": name,
                        "in": "header",
                        "required": True,
                        "description": text,
                        "schema": {"type": "string"},
                    }
                    for name, text in _SIGNATURE_HEADERS
                ],
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": body}},
                },
                "responses": {
                    "2XX": {"description": "Taken: not sent again."},
                    "default": {"description": "Any other answer, or none in time: retried."},
                },
            }
        }
    return out


def _narrow_problem_codes(operation: dict[str, Any]) -> None:
    """Each error response names the codes it can carry, and 429/503 their Retry-After."""
    responses = operation.get("responses", {})
    default_400 = responses.get("400", {})
    if default_400 and "application/problem+json" not in default_400.get("content", {}):
        # Litestar adds a 400 to every route with parameters; ours declare theirs.
        del responses["400"]
    for status, response in responses.items():
        content = response.get("content", {}).get("application/problem+json")
        if content is None:
            continue
        codes = [e["value"]["code"] for e in content.get("examples", {}).values()]
        if codes:
            content["schema"] = {
                "allOf": [
                    {"$ref": "#/components/schemas/Problem"},
                    {
                        "type": "object",
                        "properties": {
                            "code": {"type": "string", "enum": codes},
                            "status": {"type": "integer", "enum": [int(status)]},
                        },
                    },
                ]
            }
        if status in {"429", "503"}:
            response.setdefault("headers", {})["Retry-After"] = _RETRY_AFTER
