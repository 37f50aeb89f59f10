"""The console's parts for app.py: its router (pages, CSRF, error pages), its templates, its
lifespan (the console's services, after the service's own) and the gate that wraps the app."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from importlib import resources
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from litestar import Litestar, Router
from litestar.exceptions import HTTPException
from litestar.middleware import DefineMiddleware
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.template.config import TemplateConfig
from litestar.types import ASGIApp

from otpservice.console.pages import ConsolePages, LoginRequired, error_page
from otpservice.console.security import PREFIX, ConsoleCSRF, ConsoleGate, csrf_config
from otpservice.console.wiring import ConsoleServices
from otpservice.errors import OtpError
from otpservice.settings import Settings
from otpservice.usecases.support import NotInScope


class ConsoleParts:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.router = Router(
            path=PREFIX,
            route_handlers=[ConsolePages],
            middleware=[DefineMiddleware(ConsoleCSRF, config=csrf_config(settings))],
            exception_handlers={
                HTTPException: error_page,
                OtpError: error_page,
                NotInScope: error_page,
                LoginRequired: error_page,
            },
            include_in_schema=False,
        )
        directory = Path(str(resources.files("otpservice.console") / "templates"))
        environment = Environment(
            loader=FileSystemLoader(directory), autoescape=True, undefined=StrictUndefined
        )
        self.templates = TemplateConfig(instance=JinjaTemplateEngine.from_environment(environment))

    def lifespan(self) -> Callable[[Litestar], AbstractAsyncContextManager[None]]:
        settings = self.settings

        @asynccontextmanager
        async def console_lifespan(app: Litestar) -> AsyncIterator[None]:
            console = ConsoleServices(settings, app.state.services)
            app.state.console = console
            try:
                yield
            finally:
                console.close()

        return console_lifespan

    def wrap(self, app: ASGIApp) -> ASGIApp:
        return ConsoleGate(app, production=self.settings.production)
