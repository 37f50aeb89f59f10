"""What an SRE relies on: health and readiness, 503 instead of hangs when Redis is gone, the
Prometheus metrics named in the contract (with safe labels), and the OpenAPI document.
"""

from __future__ import annotations

import io
import logging
import re
import time
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from otpservice.api.shedding import ShedBeforeRouting
from otpservice.store.client import StoreClient
from tests.integration.conftest import (
    OTHER_KEY,
    Harness,
    assert_problem,
    metric_value,
    retry_after,
)
from tests.support.ports import free_port

NUMBER = "+48601234567"
A_WELL_FORMED_ID = "a" * 42
ID_SHAPE = re.compile(r"[a-z2-7]{42}")

CONTRACT_FAMILIES = {
    "otp_http_request_duration_seconds": "histogram",
    "otp_verifications_started_total": "counter",
    "otp_checks_total": "counter",
    "otp_sends_total": "counter",
    "otp_provider_request_duration_seconds": "histogram",
    "otp_delivery_seconds": "histogram",
    "otp_dlr_total": "counter",
    "otp_time_to_verify_seconds": "histogram",
    "otp_rate_limited_total": "counter",
}
ROUTES = {
    "/otp/start": "post",
    "/otp/verify": "post",
    "/otp/{verification_id}/resend": "post",
    "/otp/{verification_id}/cancel": "post",
    "/otp/{verification_id}": "get",
    "/healthz": "get",
    "/readyz": "get",
    "/metrics": "get",
}


def _samples(text: str) -> list[Any]:
    return [s for family in text_string_to_metric_families(text) for s in family.samples]


async def _flow(harness: Harness) -> dict[str, Any]:
    """Start, a wrong and a right check, a refused resend, a read, a cancel, an unknown path."""
    started = (await harness.start(NUMBER)).json()
    code = await harness.code_for(NUMBER)
    wrong = "000000" if code != "000000" else "111111"
    assert (await harness.verify(wrong, id=started["id"])).json()["valid"] is False
    assert (await harness.verify(code, to=NUMBER)).json()["valid"] is True
    second = (await harness.start("+48601234568")).json()
    resend = await harness.client.post(f"/otp/{second['id']}/resend", headers=harness.headers)
    assert resend.status_code == 429
    assert (await harness.client.get(f"/otp/{second['id']}", headers=harness.headers)).is_success
    cancel = await harness.client.post(f"/otp/{second['id']}/cancel", headers=harness.headers)
    assert cancel.is_success
    assert (await harness.client.get(f"/no/such/page/{second['id']}")).status_code == 404
    await harness.settle()
    return {"ids": [started["id"], second["id"]], "numbers": [NUMBER, "+48601234568"]}


# --- health -------------------------------------------------------------------------------------


async def test_healthz_answers_while_the_process_lives(harness: Harness) -> None:
    answer = await harness.client.get("/healthz")
    assert answer.status_code == 200
    assert answer.json() == {"status": "ok"}


async def test_readyz_answers_200_when_redis_answers(harness: Harness) -> None:
    answer = await harness.client.get("/readyz")
    assert answer.status_code == 200
    assert answer.json() == {"status": "ready"}


async def test_without_redis_the_service_answers_503_with_retry_after_and_never_hangs(
    make_harness,
) -> None:
    closed = f"redis://127.0.0.1:{free_port()}/0"
    async with make_harness(OTP_REDIS_URL=closed, OTP_REDIS_TIMEOUT_SECONDS="0.2") as harness:
        # Alive, but not ready.
        assert (await harness.client.get("/healthz")).status_code == 200
        not_ready = await harness.client.get("/readyz")
        assert_problem(not_ready, 503, "service_unavailable")
        retry_after(not_ready)

        id_path = f"/otp/{A_WELL_FORMED_ID}"
        calls = {
            "start": ("POST", "/otp/start", {"json": {"to": NUMBER}}),
            "idempotent start": (
                "POST",
                "/otp/start",
                {"json": {"to": NUMBER}, "headers": {"Idempotency-Key": "k-1"}},
            ),
            "verify": ("POST", "/otp/verify", {"json": {"id": A_WELL_FORMED_ID, "code": "123456"}}),
            "verify by number": ("POST", "/otp/verify", {"json": {"to": NUMBER, "code": "123456"}}),
            "resend": ("POST", f"{id_path}/resend", {}),
            "cancel": ("POST", f"{id_path}/cancel", {}),
            "read": ("GET", id_path, {}),
        }
        for name, (method, path, kwargs) in calls.items():
            headers = {**harness.headers, **kwargs.pop("headers", {})}
            began = time.monotonic()
            answer = await harness.client.request(method, path, headers=headers, **kwargs)
            took = time.monotonic() - began
            assert answer.status_code == 503, f"{name}: {answer.status_code} {answer.text}"
            assert_problem(answer, 503, "service_unavailable")
            assert 1 <= retry_after(answer) <= 60, name
            assert took < 2.0, f"{name} took {took:.2f} s"
        await harness.settle()
        assert len(harness.gateway.outbox) == 0


# --- logging ------------------------------------------------------------------------------------


async def test_building_the_app_keeps_the_process_log_level_and_handlers(
    captured_logs: io.StringIO, make_harness
) -> None:
    # The operator (or `otpservice serve`, from OTP_LOG_LEVEL) configured the root logger at
    # DEBUG before the app was built: the service's records must still reach that configuration.
    async with make_harness(OTP_LOG_LEVEL="DEBUG") as harness:
        assert (await harness.client.get("/healthz")).status_code == 200
        logging.getLogger("otpservice").debug("probe: the operator's DEBUG logging still works")
        assert "probe: the operator's DEBUG logging still works" in captured_logs.getvalue()


# --- metrics ------------------------------------------------------------------------------------


async def test_metrics_expose_every_family_of_the_contract(harness: Harness) -> None:
    await _flow(harness)
    text = (await harness.client.get("/metrics")).text
    declared = dict(re.findall(r"^# TYPE (\S+) (\S+)$", text, flags=re.MULTILINE))
    for family, kind in CONTRACT_FAMILIES.items():
        assert declared.get(family) == kind, f"{family}: {declared.get(family)}"


async def test_metrics_name_their_content_type_and_charset_once(harness: Harness) -> None:
    content_type = (await harness.client.get("/metrics")).headers["content-type"]
    assert content_type.startswith("text/plain; version=")
    assert content_type.count("charset") == 1, content_type


async def test_metrics_count_what_happened_with_the_contract_labels(harness: Harness) -> None:
    client = harness.client
    sends = {"provider": "sandbox", "lane": "priority", "outcome": "accepted"}

    async def counters() -> dict[str, float]:
        return {
            "started": await metric_value(client, "otp_verifications_started_total", country="PL"),
            "approved": await metric_value(client, "otp_checks_total", result="approved"),
            "wrong": await metric_value(client, "otp_checks_total", result="wrong_code"),
            "sent": await metric_value(client, "otp_sends_total", **sends),
            "verified": await metric_value(client, "otp_time_to_verify_seconds_count"),
            "cooldown": await metric_value(
                client, "otp_rate_limited_total", scope="resend_cooldown"
            ),
        }

    before = await counters()
    await _flow(harness)
    after = await counters()
    assert {k: after[k] - before[k] for k in before} == {
        "started": 2,
        "approved": 1,
        "wrong": 1,
        "sent": 2,
        "verified": 1,
        "cooldown": 1,
    }
    text = (await client.get("/metrics")).text
    provider_calls = [
        s for s in _samples(text) if s.name == "otp_provider_request_duration_seconds_count"
    ]
    assert {"provider": "sandbox", "outcome": "accepted"} in [s.labels for s in provider_calls]


async def test_request_metrics_are_labelled_by_route_template_never_by_path(
    harness: Harness,
) -> None:
    unmatched = {"method": "GET", "route": "unmatched", "status": "404"}
    name = "otp_http_request_duration_seconds_count"
    before = await metric_value(harness.client, name, **unmatched)
    flow = await _flow(harness)

    text = (await harness.client.get("/metrics")).text
    requests = [s for s in _samples(text) if s.name == name]
    assert all(set(s.labels) == {"method", "route", "status"} for s in requests)
    routes = {s.labels["route"] for s in requests}
    assert {
        "/otp/start",
        "/otp/verify",
        "/otp/{verification_id}",
        "/otp/{verification_id}/resend",
        "/otp/{verification_id}/cancel",
    } <= routes
    for route in routes:
        assert route == "unmatched" or route.startswith("/"), route
        assert not ID_SHAPE.search(route), route
        assert "/no/such" not in route
    for verification_id in flow["ids"]:
        assert verification_id not in text
    assert await metric_value(harness.client, name, **unmatched) == before + 1


async def test_no_metric_label_holds_a_phone_number_or_an_id(harness: Harness) -> None:
    flow = await _flow(harness)
    other = await harness.client.post(
        "/otp/start", json={"to": "+4915112345678"}, headers={"X-Api-Key": OTHER_KEY}
    )
    flow["ids"].append(other.json()["id"])
    flow["numbers"].append("+4915112345678")
    await harness.settle()

    text = (await harness.client.get("/metrics")).text
    values = {v for s in _samples(text) for v in s.labels.values()}
    for value in values:
        assert not ID_SHAPE.search(value), value
        for verification_id in flow["ids"]:
            assert verification_id not in value
            assert verification_id[:16] not in value
        for number in flow["numbers"]:
            assert number.lstrip("+") not in value, value
            assert number[3:] not in value, value


# --- OpenAPI ------------------------------------------------------------------------------------


def _resolve(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    if "allOf" in schema:  # a schema narrowed by another: their properties together
        merged: dict[str, Any] = {"properties": {}}
        for part in schema["allOf"]:
            merged["properties"].update(_resolve(document, part).get("properties", {}))
        return merged
    ref = schema.get("$ref")
    if ref is None:
        return schema
    node: Any = document
    for part in ref.removeprefix("#/").split("/"):
        node = node[part]
    return _resolve(document, node)


async def test_the_openapi_document_is_3_1_and_lists_every_route(harness: Harness) -> None:
    answer = await harness.client.get("/schema/openapi.json")
    assert answer.status_code == 200
    document = answer.json()
    assert document["openapi"].startswith("3.1.")
    for path, method in ROUTES.items():
        assert method in document["paths"].get(path, {}), f"{method.upper()} {path} is missing"


async def test_the_openapi_document_describes_the_start_and_verify_bodies(
    harness: Harness,
) -> None:
    document = (await harness.client.get("/schema/openapi.json")).json()
    start = document["paths"]["/otp/start"]["post"]["requestBody"]
    assert start.get("required") is True
    schema = _resolve(document, start["content"]["application/json"]["schema"])
    assert set(schema["properties"]) == {"to", "locale", "app_hash", "client_ref", "signals"}
    assert schema["required"] == ["to"]
    # /otp/verify: the code and exactly one of id and to, as two schemas.
    verify = document["paths"]["/otp/verify"]["post"]["requestBody"]
    assert verify.get("required") is True
    schema = _resolve(document, verify["content"]["application/json"]["schema"])
    shapes = [_resolve(document, branch) for branch in schema["oneOf"]]
    assert [(set(s["properties"]), sorted(s["required"])) for s in shapes] == [
        ({"id", "code"}, ["code", "id"]),
        ({"to", "code"}, ["code", "to"]),
    ]


async def test_the_openapi_document_gives_every_error_as_problem_json(harness: Harness) -> None:
    document = (await harness.client.get("/schema/openapi.json")).json()
    documented = {
        ("/otp/start", "post"): {400, 401, 403, 409, 413, 415, 429, 503},
        ("/otp/verify", "post"): {400, 401, 404, 413, 415, 429, 503},
        ("/otp/{verification_id}/resend", "post"): {401, 404, 429, 503},
        ("/otp/{verification_id}/cancel", "post"): {401, 404, 503},
        ("/otp/{verification_id}", "get"): {401, 404, 503},
        ("/readyz", "get"): {503},
    }
    for (path, method), statuses in documented.items():
        responses = document["paths"][path][method]["responses"]
        assert statuses <= {int(s) for s in responses}, f"{method.upper()} {path}"
        for status, response in responses.items():
            if int(status) < 400:
                continue
            media = set(response.get("content", {}))
            assert media == {"application/problem+json"}, f"{method.upper()} {path} {status}"
            problem = _resolve(document, response["content"]["application/problem+json"]["schema"])
            assert {"type", "title", "status", "detail", "code"} <= set(problem["properties"])


async def test_the_start_warns_when_redis_could_evict_or_lose_codes(redis) -> None:
    store = StoreClient(redis, timeout=2.0)
    # The test server runs with noeviction and without AOF: only the AOF warning is due.
    assert [w for w in await store.durability_warnings() if "maxmemory" in w] == []
    await redis.config_set("maxmemory-policy", "allkeys-lru")
    try:
        warnings = await store.durability_warnings()
    finally:
        await redis.config_set("maxmemory-policy", "noeviction")
    assert any("allkeys-lru" in w and "noeviction" in w for w in warnings)
    assert any("appendonly is off" in w for w in warnings)


async def test_a_saturated_process_sheds_the_hashing_routes_with_503_overloaded(
    harness: Harness,
) -> None:
    started = (await harness.start(NUMBER)).json()
    services = harness.app.state.services
    services.hasher._max_wait = -1.0  # every request would now wait too long for argon2
    before = await metric_value(harness.client, "otp_requests_shed_total", operation="verify")
    try:
        for path, body in (
            ("/otp/start", {"to": "+48601234568"}),
            ("/otp/verify", {"id": started["id"], "code": "123456"}),
            (f"/otp/{started['id']}/resend", None),
        ):
            answer = await harness.client.post(path, json=body, headers=harness.headers)
            assert_problem(answer, 503, "overloaded")
            assert retry_after(answer) >= 1
        # What needs no hashing is answered, and the store is not reported down.
        read = await harness.client.get(f"/otp/{started['id']}", headers=harness.headers)
        assert (read.status_code, read.json()["attempts_left"]) == (200, 5)
        assert (await harness.client.get("/readyz")).status_code == 200
    finally:
        services.hasher._max_wait = 0.1
    after = await metric_value(harness.client, "otp_requests_shed_total", operation="verify")
    assert after == before + 1
    assert await metric_value(harness.client, "otp_store_up") == 1


def _shed_before_routing(app: Any) -> ShedBeforeRouting:
    """The ShedBeforeRouting wrapper in the app's chain of ASGI wrappers."""
    handler = app.asgi_handler
    for _ in range(5):
        if isinstance(handler, ShedBeforeRouting):
            return handler
        handler = handler.app
    raise AssertionError("ShedBeforeRouting is not in the app's ASGI chain")


async def test_a_shed_is_answered_before_routing_exactly_as_the_router_would_answer_it(
    harness: Harness,
) -> None:
    started = (await harness.start(NUMBER)).json()
    services = harness.app.state.services
    wrapper = _shed_before_routing(harness.app)
    resend = f"/otp/{started['id']}/resend"
    route = "/otp/{verification_id}/resend"
    services.hasher._max_wait = -1.0
    try:
        before = await metric_value(harness.client, "otp_requests_shed_total", operation="resend")
        timed = await metric_value(
            harness.client,
            "otp_http_request_duration_seconds_count",
            method="POST",
            route=route,
            status="503",
        )
        # What reaches the router behind the wrapper.
        router, reached = wrapper.app, []

        async def watched(scope: Any, receive: Any, send: Any) -> None:
            reached.append(scope["path"])
            await router(scope, receive, send)

        wrapper.app = watched
        try:
            fast = await harness.client.post(resend, headers=harness.headers)
            assert reached == []  # answered before routing
            # The same request through the router and its guard (the wrapper stood aside).
            hasher = wrapper._hasher
            wrapper._hasher = lambda: None
            try:
                routed = await harness.client.post(resend, headers=harness.headers)
            finally:
                wrapper._hasher = hasher
            assert reached == [resend]
        finally:
            wrapper.app = router
        for answer in (fast, routed):
            assert_problem(answer, 503, "overloaded")
        assert fast.json() == routed.json()
        assert fast.headers["retry-after"] == routed.headers["retry-after"]
        assert fast.headers["content-type"] == routed.headers["content-type"]
        # Both counted as sheds, and timed under the route's template, not the raw path.
        after = await metric_value(harness.client, "otp_requests_shed_total", operation="resend")
        assert after == before + 2
        assert (
            await metric_value(
                harness.client,
                "otp_http_request_duration_seconds_count",
                method="POST",
                route=route,
                status="503",
            )
            == timed + 2
        )
        # A wrong key is still a 401 while the process sheds: the key is checked first.
        wrong = await harness.client.post(
            "/otp/start", json={"to": NUMBER}, headers={"Authorization": "Bearer wrong"}
        )
        assert_problem(wrong, 401, "unauthorized")
        # The body is never read: a body that is not even JSON is shed the same way.
        garbage = await harness.client.post(
            "/otp/verify",
            content=b"[" * 5000,
            headers={**harness.headers, "Content-Type": "application/json"},
        )
        assert_problem(garbage, 503, "overloaded")
    finally:
        services.hasher._max_wait = 0.1
