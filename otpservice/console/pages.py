"""The console's pages: sign-in, lookup, overview, audit trail. Handlers only delegate: the
use cases (usecases/support.py, console_access.py) decide, wording.py words, templates show."""

from __future__ import annotations

from importlib import resources
from typing import Annotated, Any

from litestar import Controller, Request, Response, get, post
from litestar.datastructures import Cookie
from litestar.exceptions import HTTPException, NotFoundException
from litestar.params import PathParameter, QueryParameter
from litestar.response import Redirect, Template
from litestar.status_codes import HTTP_200_OK

from otpservice.api.otp import client_ip
from otpservice.console import views
from otpservice.console.security import PREFIX, session_cookie_name
from otpservice.console.wiring import ConsoleServices
from otpservice.errors import OtpError
from otpservice.settings import SupportUser
from otpservice.usecases.console_access import SignInBusy, SignInLimited, SignInRefused
from otpservice.usecases.support import NotInScope, UnreadableQuery

TenantChoice = Annotated[str | None, QueryParameter(name="tenant", required=False, max_length=64)]
"""The tenant picked on a page (one of the user's scope; checked by the use case)."""

MAX_FIELD = 256
_CSS = (resources.files("otpservice.console") / "static" / "console.css").read_bytes()


class LoginRequired(Exception):
    """No live session: the page answers with the sign-in form."""


def _console(request: Request[Any, Any, Any]) -> ConsoleServices:
    services: ConsoleServices = request.app.state.console
    return services


async def _signed_in(request: Request[Any, Any, Any]) -> SupportUser:
    console = _console(request)
    user = await console.access.user_for(request.cookies.get(session_cookie_name(console.settings)))
    if user is None:
        raise LoginRequired
    return user


async def _form(request: Request[Any, Any, Any]) -> dict[str, str]:
    """The form's text fields (the last of a repeated one), each cut to MAX_FIELD."""
    form = await request.form()
    return {k: v[:MAX_FIELD] for k, v in form.items() if isinstance(v, str)}


def _page(
    request: Request[Any, Any, Any],
    template: str,
    user: SupportUser | None,
    *,
    status: int = HTTP_200_OK,
    **context: Any,
) -> Template:
    console = _console(request)
    return Template(
        template_name=template,
        context={
            "user": user,
            "scope": console.desk.scope(user) if user is not None else [],
            "problem": "",
            **context,
        },
        status_code=status,
    )


class ConsolePages(Controller):
    path = "/"

    @get("/", name="console:lookup-form")
    async def lookup_form(
        self, request: Request[Any, Any, Any], tenant: TenantChoice = None
    ) -> Template:
        user = await _signed_in(request)
        return _page(request, "lookup.html", user, chosen=tenant or "", query="", result=None)

    @post("/lookup", status_code=HTTP_200_OK)
    async def lookup(self, request: Request[Any, Any, Any]) -> Template:
        user = await _signed_in(request)
        form = await _form(request)
        desk = _console(request).desk
        scope = desk.scope(user)
        tenant = form.get("tenant") or (scope[0] if scope else "")
        query = form.get("q", "")
        try:
            result = await desk.lookup(user, tenant, query)
        except UnreadableQuery as exc:
            return _page(
                request, "lookup.html", user, status=400, chosen=tenant, query=query,
                result=None, problem=str(exc),
            )  # fmt: skip
        return _page(
            request,
            "lookup.html",
            user,
            chosen=result.tenant,
            # Not echoed: the page shows the number masked, and only so.
            query="",
            result=views.lookup_view(result),
        )

    @get("/overview")
    async def overview(
        self, request: Request[Any, Any, Any], tenant: TenantChoice = None
    ) -> Template:
        user = await _signed_in(request)
        desk = _console(request).desk
        scope = desk.scope(user)
        name = tenant or (scope[0] if scope else "")
        found = await desk.overview(user, name)
        return _page(request, "overview.html", user, chosen=name, view=views.overview_view(found))

    @get("/audit")
    async def audit(self, request: Request[Any, Any, Any], tenant: TenantChoice = None) -> Template:
        user = await _signed_in(request)
        desk = _console(request).desk
        names = [tenant] if tenant else desk.scope(user)
        entries = await desk.audit(user, names)
        return _page(
            request, "audit.html", user, chosen=tenant or "", entries=views.audit_rows(entries)
        )

    @get("/login")
    async def login_form(self, request: Request[Any, Any, Any]) -> Template | Redirect:
        console = _console(request)
        user = await console.access.user_for(
            request.cookies.get(session_cookie_name(console.settings))
        )
        if user is not None:
            return Redirect(f"{PREFIX}/", status_code=303)
        # The dummy hash for unknown names is made now, before anyone submits the form.
        console.passwords.prepare()
        return _login_page(request, name="")

    @post("/login")
    async def sign_in(self, request: Request[Any, Any, Any]) -> Template | Redirect:
        console = _console(request)
        form = await _form(request)
        name = form.get("name", "")
        ip = client_ip(request, console.settings.trusted_proxies)
        try:
            _, session_id = await console.access.sign_in(name, form.get("password", ""), ip)
        except SignInRefused:
            return _login_page(request, name=name, status=401, problem="Wrong name or password.")
        except SignInLimited as exc:
            return _login_page(
                request, name=name, status=429,
                problem=f"Too many failed sign-ins: try again in {exc.minutes} min.",
            )  # fmt: skip
        except SignInBusy:
            return _login_page(
                request, name=name, status=503,
                problem="Too many sign-ins at this moment: try again in a few seconds.",
            )  # fmt: skip
        return Redirect(
            f"{PREFIX}/",
            status_code=303,
            cookies=[_session_cookie(console, session_id)],
        )

    @post("/logout")
    async def sign_out(self, request: Request[Any, Any, Any]) -> Redirect:
        console = _console(request)
        name = session_cookie_name(console.settings)
        await console.access.sign_out(request.cookies.get(name))
        return Redirect(
            f"{PREFIX}/login",
            status_code=303,
            cookies=[_session_cookie(console, "", max_age=0)],
        )

    @get("/{unknown:path}", include_in_schema=False)
    async def not_found(
        self,
        unknown: Annotated[str, PathParameter()],  # noqa: ARG002
    ) -> Template:
        """Any other address under /console is a page too (not the API's problem+json)."""
        raise NotFoundException

    @get("/static/console.css")
    async def stylesheet(self) -> Response[bytes]:
        return Response(_CSS, media_type="text/css; charset=utf-8")


def _session_cookie(console: ConsoleServices, value: str, max_age: int | None = None) -> Cookie:
    # No max-age: the browser forgets it on exit; the server ends it after 30 idle minutes or
    # 12 hours, whichever comes first.
    return Cookie(
        key=session_cookie_name(console.settings),
        value=value,
        path=PREFIX,
        httponly=True,
        secure=console.settings.production,
        samesite="strict",
        max_age=max_age,
    )


def _login_page(
    request: Request[Any, Any, Any], *, name: str, status: int = HTTP_200_OK, problem: str = ""
) -> Template:
    console = _console(request)
    return _page(
        request,
        "login.html",
        None,
        status=status,
        name=name,
        problem=problem,
        no_users=not console.settings.support_users,
    )


_TITLES = {
    400: "That request could not be read",
    403: "The form could not be accepted",
    404: "Not found",
    405: "Method not allowed",
    413: "Too large",
    429: "Too many requests",
    503: "Temporarily unavailable",
}
_MESSAGES = {
    403: (
        "The form's security token was missing or did not match (it may have come from another"
        " site, or the page was open too long). Go back, reload the page and try again."
    ),
    404: "There is nothing here, or it is not in your tenants.",
    503: "The verification store cannot be reached just now: try again in a few seconds.",
}


def error_page(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:  # noqa: ARG001
    """Every refusal under /console as a page (the API's errors stay problem+json)."""
    if isinstance(exc, LoginRequired):
        return Redirect(f"{PREFIX}/login", status_code=303)
    if isinstance(exc, NotInScope):
        status = 404
    elif isinstance(exc, HTTPException):
        status = exc.status_code
    elif isinstance(exc, OtpError):
        status = exc.status
    else:
        status = 500
    return Template(
        template_name="error.html",
        context={
            "user": None,
            "scope": [],
            "status": status,
            "title": _TITLES.get(status, "Something went wrong"),
            "message": _MESSAGES.get(status, "Go back and try again."),
        },
        status_code=status,
    )
