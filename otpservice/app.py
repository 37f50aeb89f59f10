"""create_app(settings) -> Litestar: the one place where the pieces are wired together. The
lifespan owns the Redis pool, the hasher and the lane."""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

from litestar import Litestar
from litestar._openapi.plugin import OpenAPIPlugin
from litestar.datastructures import State
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin, ScalarRenderPlugin
from litestar.openapi.spec import Components, SecurityScheme
from prometheus_client import multiprocess
from redis.asyncio import Redis

from otpservice import __version__
from otpservice.api.dev import dev_inbox
from otpservice.api.event_bodies import event_renderer
from otpservice.api.fraud import FraudController
from otpservice.api.openapi import refine as refine_openapi
from otpservice.api.ops import healthz, metrics_endpoint, readyz
from otpservice.api.otp import OtpController
from otpservice.api.problems import internal_error_handler, problem_details_plugin
from otpservice.api.request_metrics import RequestMetrics
from otpservice.api.shedding import ShedBeforeRouting, shed_routes
from otpservice.api.webhooks import delivery_reports
from otpservice.hashing import CodeHasher
from otpservice.providers.base import SmsGateway
from otpservice.providers.factory import build_gateway
from otpservice.services import Services
from otpservice.settings import Settings
from otpservice.store.connection import RedisClient, connect

log = logging.getLogger(__name__)


def make_redis(settings: Settings) -> RedisClient:
    """A Redis client for the configured URL (one server, a Redis Cluster or a Sentinel-managed
    primary: store/connection.py), or the embedded in-process store (development)."""
    if settings.redis_url is None:
        import fakeredis  # noqa: PLC0415 - only the embedded development mode needs it

        client: Redis = fakeredis.FakeAsyncRedis(server=fakeredis.FakeServer())
        return client
    return connect(settings.redis_url, settings.redis_timeout)


def create_app(
    settings: Settings,
    *,
    redis: Redis | None = None,
    gateway: SmsGateway | None = None,
) -> Litestar:
    """The ASGI app. Tests may pass their own Redis client and gateway."""

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        client = redis if redis is not None else make_redis(settings)
        sms = gateway if gateway is not None else build_gateway(settings)
        services = Services(settings, client, sms, event_renderer)
        if settings.redis_url is not None:
            for warning in await services.store.durability_warnings():
                log.warning("Redis: %s", warning)
        services.loop_lag.start()
        services.lane.start()
        if services.events is not None:
            services.events.start()
        app.state.services = services
        app.state.gateway = sms
        async with AsyncExitStack() as closing:
            # Run at shutdown in reverse order, each even if an earlier one raised.
            if settings.metrics_dir:
                # This worker's live gauges must stop counting in the sum.
                closing.callback(multiprocess.mark_process_dead, os.getpid(), settings.metrics_dir)
            if redis is None:
                closing.push_async_callback(client.aclose)
            closing.callback(services.hasher.shutdown)
            # Before the client closes: the approvals waiting to be counted.
            closing.push_async_callback(services.fraud_store.aclose)
            closing.push_async_callback(services.loop_lag.stop)
            closing.push_async_callback(sms.aclose)
            # The server has already spent up to half the deadline on in-flight requests.
            closing.push_async_callback(services.lane.stop, settings.shutdown_deadline / 4)
            if services.events is not None:
                closing.push_async_callback(services.events.stop, settings.shutdown_deadline / 4)
            yield

    # The support console (OTP_CONSOLE): imported only when on, so production without it
    # loads none of it.
    console = None
    if settings.console:
        from otpservice.console.site import ConsoleParts  # noqa: PLC0415

        console = ConsoleParts(settings)

    app = Litestar(
        route_handlers=[
            OtpController,
            FraudController,
            delivery_reports,
            healthz,
            readyz,
            metrics_endpoint,
            # Shows codes: development only, never mounted in production.
            *([] if settings.production else [dev_inbox]),
            *([console.router] if console else []),
        ],
        # The console's after the service's: it builds on app.state.services.
        lifespan=[lifespan, *([console.lifespan()] if console else [])],
        template_config=console.templates if console else None,
        plugins=[problem_details_plugin()],
        exception_handlers={Exception: internal_error_handler},
        request_max_body_size=settings.max_body_bytes,
        openapi_config=OpenAPIConfig(
            title="otpservice",
            version=__version__,
            description="One-time-password verification over the SMS priority lane. Every"
            " error is application/problem+json with a stable `code`; the README lists them"
            " and says what each limit is.",
            path="/schema",
            # /schema is the API reference page; /schema/openapi.json the document itself.
            render_plugins=[ScalarRenderPlugin(path="/"), JsonRenderPlugin()],
            components=Components(
                security_schemes={
                    "BearerAuth": SecurityScheme(type="http", scheme="bearer"),
                    "ApiKeyAuth": SecurityScheme(
                        type="apiKey", security_scheme_in="header", name="X-Api-Key"
                    ),
                    "WebhookBasic": SecurityScheme(type="http", scheme="basic"),
                    "WebhookBearer": SecurityScheme(type="http", scheme="bearer"),
                }
            ),
        ),
        state=State({"settings": settings}),
        debug=False,
        # Logging belongs to the process (__main__): Litestar's default would replace the root
        # logger's handlers and level when the app is built.
        logging_config=None,
    )
    openapi = app.plugins.get(OpenAPIPlugin)
    refine_openapi(openapi.provide_openapi_schema())
    # Under overload most answers are sheds: answered before routing, at a fraction of the cost.
    app.asgi_handler = ShedBeforeRouting(
        app.asgi_handler, lambda: _hasher_of(app), settings.tenants, shed_routes(app)
    )
    # Outermost wrapper: counts requests the router itself answers (404, 405, 413) too.
    app.asgi_handler = RequestMetrics(app.asgi_handler)
    if console is not None:
        # Security headers on every /console response, error pages included; forms only.
        app.asgi_handler = console.wrap(app.asgi_handler)
    return app


def _hasher_of(app: Litestar) -> CodeHasher | None:
    """This process's hasher once the lifespan has built the services; None before."""
    services: Services | None = getattr(app.state, "services", None)
    return services.hasher if services is not None else None
