"""Builds the configured provider's gateway, with one pooled httpx client for the process's life."""

from __future__ import annotations

import httpx

from otpservice.providers.base import SmsGateway
from otpservice.providers.breaker import CircuitBreaker
from otpservice.providers.flowstates import FlowstatesGateway
from otpservice.providers.messageflow import MessageFlowGateway
from otpservice.providers.sandbox import ReportSimulator, SandboxGateway
from otpservice.settings import ProviderSettings, Settings


def provider_client(provider: ProviderSettings) -> httpx.AsyncClient:
    """One pooled client per provider, with the configured connect/read timeouts."""
    timeout = httpx.Timeout(
        connect=provider.connect_timeout,
        read=provider.read_timeout,
        write=provider.read_timeout,
        pool=provider.connect_timeout,
    )
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=32, keepalive_expiry=60)
    return httpx.AsyncClient(timeout=timeout, limits=limits, follow_redirects=False)


def service_base_url(settings: Settings) -> str:
    if settings.public_url:
        return settings.public_url
    host = "127.0.0.1" if settings.host in {"0.0.0.0", "::", ""} else settings.host  # noqa: S104
    return f"http://{host}:{settings.port}"


def build_gateway(
    settings: Settings, *, sandbox_client: httpx.AsyncClient | None = None
) -> SmsGateway:
    """The priority-lane gateway of the configured provider; the only way a code leaves."""
    provider = settings.provider
    if provider.name == "messageflow":
        assert provider.messageflow is not None  # load_settings guarantees it
        mf = provider.messageflow
        return _guarded(
            settings,
            MessageFlowGateway(
                provider_client(provider),
                base_url=mf.base_url,
                api_key=mf.api_key.reveal().decode(),
                app_key=mf.app_key.reveal().decode(),
                total_timeout=provider.total_timeout,
            ),
        )
    if provider.name == "flowstates":
        assert provider.flowstates is not None  # load_settings guarantees it
        fs = provider.flowstates
        return _guarded(
            settings,
            FlowstatesGateway(
                provider_client(provider),
                base_url=fs.base_url,
                api_key=fs.api_key.reveal().decode(),
                total_timeout=provider.total_timeout,
            ),
        )
    reports = ReportSimulator(
        sandbox_client or provider_client(provider),
        url=f"{service_base_url(settings)}/webhooks/sandbox",
        secret=provider.webhook_secrets["sandbox"].reveal().decode(),
        delay=provider.sandbox_dlr_delay,
        outcomes=provider.sandbox_outcomes,
    )
    return SandboxGateway(echo=provider.sandbox_echo, reports=reports)


def _guarded(settings: Settings, gateway: SmsGateway) -> SmsGateway:
    return CircuitBreaker(
        gateway,
        failure_threshold=settings.provider.breaker_failures,
        reset_after=settings.provider.breaker_reset_seconds,
    )
