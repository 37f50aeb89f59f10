"""Operations endpoints: /healthz, /readyz and /metrics."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get
from litestar.datastructures import State
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

from otpservice.api.openapi import errors_for
from otpservice.api.schemas import Health
from otpservice.errors import Overloaded, ServiceUnavailable
from otpservice.settings import Settings


@get(
    "/healthz",
    tags=["operations"],
    summary="The process is alive (touches nothing external)",
    operation_id="getHealth",
)
async def healthz() -> Health:
    return Health(status="ok")


@get(
    "/readyz",
    tags=["operations"],
    summary="The store answers",
    operation_id="getReadiness",
    responses=errors_for("service_unavailable"),
)
async def readyz(state: State) -> Health:
    try:
        answered = await state.services.store.ping()
    except Overloaded:
        # The ping waited behind this process's saturated event loop, not for Redis: taking the
        # process out of rotation would only pile its load on the others. It sheds by itself.
        return Health(status="ready")
    if not answered:
        raise ServiceUnavailable("The verification store does not answer.")
    return Health(status="ready")


# Litestar adds "; charset=utf-8" to a text/ media type itself: give it the rest only.
METRICS_MEDIA_TYPE = CONTENT_TYPE_LATEST.replace("; charset=utf-8", "")


@get(
    "/metrics",
    tags=["operations"],
    summary="Prometheus metrics",
    media_type=METRICS_MEDIA_TYPE,
    operation_id="getMetrics",
)
async def metrics_endpoint(request: Request[Any, Any, Any]) -> Response[bytes]:
    settings: Settings = request.app.state.settings
    registry = REGISTRY
    if settings.metrics_dir:
        # Several worker processes: sum what every one of them wrote.
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=settings.metrics_dir)  # type: ignore[no-untyped-call]
    return Response(generate_latest(registry), media_type=METRICS_MEDIA_TYPE)
