"""The console's composition root: routes, middleware and error pages around a Backend and a SignIn, so
tests hand in fakes and `python -m services.console` hands in gRPC and Authlib."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, Counter, generate_latest
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.common.policy import Policy, load_policy
from services.console import pages
from services.console.backend import Backend, BackendError, Failure
from services.console.config import ConsoleSettings
from services.console.i18n import LOCALES
from services.console.signin import SignIn
from services.console.web import SecurityHeaders, render

log = logging.getLogger(__name__)
SESSION_COOKIE = "catalyst_session"
STATIC = Path(__file__).parent / "static"

_STATUS = {
    Failure.UNAVAILABLE: 503,
    Failure.UNAUTHENTICATED: 401,
    Failure.PERMISSION_DENIED: 403,
    Failure.NOT_FOUND: 404,
    Failure.REFUSED: 400,
    Failure.ERROR: 502,
}


async def _refused(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, BackendError)
    if exc.failure is Failure.UNAUTHENTICATED:
        request.session.pop("user", None)  # the token is no longer good: the person signs in again
    return render(request, "error.html", _STATUS[exc.failure], problem=exc.failure.value, detail=exc.message,
                  service=exc.service)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    problem = {400: "bad_request", 403: "csrf" if exc.detail == "csrf" else "forbidden", 404: "not_found",
               405: "method"}.get(exc.status_code, "bad_request")
    return render(request, "error.html", exc.status_code, problem=problem)


async def _sign_in_first(request: Request, exc: Exception) -> Response:
    return RedirectResponse("/login", status_code=303)


async def _bug(request: Request, exc: Exception) -> Response:
    log.exception("unexpected error on %s", request.url.path, exc_info=exc)
    return render(request, "error.html", 500, problem="bug")


def _metrics(registry: CollectorRegistry) -> Callable[[Request], Awaitable[Response]]:
    async def metrics(request: Request) -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return metrics


def create_app(
    settings: ConsoleSettings,
    backend: Backend,
    signin: SignIn,
    on_shutdown: Callable[[], Awaitable[None]] | None = None,
    registry: CollectorRegistry = REGISTRY,
    policy: Policy | None = None,
) -> Starlette:
    """`policy` is the works agreement's file every service reads (the council's page shows it; the ranking
    switch exists only where it has rankings); the configured file unless a test hands in another."""
    requests = Counter("console_requests", "HTTP requests to the console by page and status", ["page", "status"],
                       registry=registry)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        if on_shutdown is not None:
            await on_shutdown()

    routes = [
        Route("/", pages.home),
        Route("/login", pages.login),
        Route("/auth/callback", pages.callback),
        Route("/logout", pages.logout, methods=["POST"]),
        Route("/language", pages.language, methods=["POST"]),
        Route("/me", pages.activity),
        Route("/me/badges", pages.badges),
        Route("/me/invitations", pages.answer_invitation, methods=["POST"]),
        Route("/me/badges/shown", pages.show_badge, methods=["POST"]),
        Route("/me/programme", pages.my_programme),
        Route("/me/programme", pages.volunteer, methods=["POST"]),
        Route("/me/accesses", pages.my_accesses),
        Route("/me/consent", pages.consent),
        Route("/me/consent", pages.save_consent, methods=["POST"]),
        Route("/me/data", pages.my_data),
        Route("/me/data/download", pages.download),
        Route("/me/erase", pages.erase_page),
        Route("/me/erase", pages.erase, methods=["POST"]),
        Route("/programme", pages.programme_overview),
        Route("/programme/candidates", pages.candidates),
        Route("/programme/person", pages.person),
        Route("/programme/legitimation", pages.record_legitimation, methods=["POST"]),
        Route("/programme/pilot", pages.pilot_group),
        Route("/programme/calibration", pages.calibration),
        Route("/programme/calibration", pages.approve_calibration, methods=["POST"]),
        Route("/council", pages.council),
        Route("/council/audit", pages.audit_log),
        Route("/healthz", pages.healthz),
        Route("/metrics", _metrics(registry)),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    middleware = [
        Middleware(CountRequests, counter=requests),
        Middleware(SecurityHeaders),
        Middleware(
            SessionMiddleware,
            secret_key=settings.console_session_secret,
            session_cookie=SESSION_COOKIE,
            max_age=int(settings.console_session_hours * 3600),
            same_site="lax",  # the identity provider's redirect back is a cross-site top-level GET
            https_only=settings.console_secure_cookies,
        ),
    ]
    app = Starlette(
        routes=routes,
        middleware=middleware,
        lifespan=lifespan,
        exception_handlers={
            BackendError: _refused,
            HTTPException: _http_error,
            pages.SignInRequired: _sign_in_first,
            Exception: _bug,
        },
    )
    app.state.settings = settings
    app.state.backend = backend
    app.state.signin = signin
    app.state.locales = LOCALES
    app.state.policy = policy or load_policy()

    return app


class CountRequests:
    """console_requests by route (not by raw path, which a client could make endless) and status."""

    def __init__(self, app: ASGIApp, counter: Counter) -> None:
        self.app = app
        self.counter = counter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = [500]

        async def noting_status(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, noting_status)
        finally:
            self.counter.labels(getattr(scope.get("route"), "path", "other"), str(status[0])).inc()
