"""The pages: each asks the services as the signed-in person, builds a view model (views.py) and renders it.
Every client input is checked here; a service's refusal becomes a page that says why."""

from __future__ import annotations

import json
from collections.abc import Awaitable
from datetime import UTC, datetime
from typing import TypeVar

from catalyst.recognition.v1 import recognition_pb2 as rec
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from services.common.auth import Role
from services.console import views
from services.console.backend import Backend, BackendError, Failure
from services.console.signin import Identity, SignIn, SignInFailed
from services.console.web import (
    LANGUAGE_COOKIE,
    checked_form,
    field,
    flash,
    identity_of,
    render,
    safe_return_path,
)

T = TypeVar("T")


class SignInRequired(Exception):
    """The page needs a signed-in person (or one with another role)."""


def _backend(request: Request) -> Backend:
    return request.app.state.backend


def _employee(request: Request) -> Identity:
    identity = identity_of(request)
    if identity is None:
        raise SignInRequired
    if not identity.has(Role.EMPLOYEE):
        raise HTTPException(403, "role")
    return identity


async def _or_none(call: Awaitable[T]) -> T | None:
    """The answer, or None when the service has nothing about the person yet (NOT_FOUND)."""
    try:
        return await call
    except BackendError as exc:
        if exc.failure is Failure.NOT_FOUND:
            return None
        raise


async def home(request: Request) -> Response:
    identity = identity_of(request)
    if identity is not None and identity.has(Role.EMPLOYEE):
        return RedirectResponse("/me", status_code=303)
    return render(request, "home.html")


async def login(request: Request) -> Response:
    signin: SignIn = request.app.state.signin
    try:
        return await signin.redirect(request, request.app.state.settings.console_redirect_url)
    except SignInFailed as exc:
        return render(request, "error.html", 503, problem="signin_unavailable", detail=str(exc))


async def callback(request: Request) -> Response:
    signin: SignIn = request.app.state.signin
    try:
        identity = await signin.complete(request)
    except SignInFailed as exc:
        return render(request, "error.html", 400, problem="signin_failed", detail=str(exc))
    csrf = request.session.get("csrf")
    request.session.clear()  # a new session for the person (no fixation); the CSRF token stays the page's
    if csrf is not None:
        request.session["csrf"] = csrf
    request.session["user"] = identity.to_session()
    return RedirectResponse("/", status_code=303)


async def logout(request: Request) -> Response:
    await checked_form(request)
    request.session.clear()
    flash(request, "signed_out")
    return RedirectResponse("/", status_code=303)


async def language(request: Request) -> Response:
    form = await checked_form(request)
    chosen = field(form, "language", 8)
    response = RedirectResponse(safe_return_path(field(form, "next", 500) or "/"), status_code=303)
    if chosen in request.app.state.locales:
        secure = request.app.state.settings.console_secure_cookies
        response.set_cookie(
            LANGUAGE_COOKIE, chosen, max_age=365 * 86400, httponly=True, secure=secure, samesite="lax"
        )
    return response


async def activity(request: Request) -> Response:
    identity = _employee(request)
    window = request.query_params.get("window", "")
    if len(window) > 16:
        raise HTTPException(400, "window")
    backend = _backend(request)
    score = await _or_none(backend.score(identity.token))
    explanation = await _or_none(backend.explain(identity.token, window)) if score is not None else None
    view = views.activity(score, explanation) if score is not None and explanation is not None else None
    return render(request, "activity.html", view=view, section="activity")


async def badges(request: Request) -> Response:
    identity = _employee(request)
    backend = _backend(request)
    held = await _or_none(backend.badges(identity.token)) or rec.GetBadgesResponse()
    progress = await _or_none(backend.progress(identity.token)) or rec.GetProgressResponse()
    return render(request, "badges.html", view=views.badges(held, progress), section="badges")


async def answer_invitation(request: Request) -> Response:
    identity = _employee(request)
    form = await checked_form(request)
    badge, answer, reason = field(form, "badge", 64), field(form, "answer", 8), field(form, "reason", 500)
    if not badge or answer not in ("accept", "decline"):
        raise HTTPException(400, "answer")
    await _backend(request).respond_to_invitation(identity.token, badge, answer == "accept", reason)
    flash(request, "invitation_accepted" if answer == "accept" else "invitation_declined")
    return RedirectResponse("/me/badges", status_code=303)


async def consent(request: Request) -> Response:
    identity = _employee(request)
    backend = _backend(request)
    score = await _or_none(backend.score(identity.token))
    preferences = await backend.preferences(identity.token)
    return render(request, "consent.html", view=views.consent(score, preferences), section="consent")


async def save_consent(request: Request) -> Response:
    identity = _employee(request)
    form = await checked_form(request)
    backend = _backend(request)
    await backend.set_ranking_opt_out(identity.token, form.get("ranking_opt_out") == "on")
    preferences = rec.Preferences(
        recognition_opt_out=form.get("recognition_opt_out") == "on",
        hidden_from_lists=form.get("hidden_from_lists") == "on",
    )
    await backend.set_preferences(identity.token, preferences)
    flash(request, "consent_saved")
    return RedirectResponse("/me/consent", status_code=303)


async def my_data(request: Request) -> Response:
    _employee(request)
    return render(request, "data.html", section="data")


async def download(request: Request) -> Response:
    identity = _employee(request)
    backend = _backend(request)
    export = views.my_data_export(
        await backend.my_data(identity.token),
        await _or_none(backend.profile(identity.token)),
        await _or_none(backend.score(identity.token)),
    )
    name = f"catalyst-my-data-{datetime.now(UTC):%Y-%m-%d}.json"
    return Response(
        json.dumps(export, indent=2, ensure_ascii=False),
        media_type="application/json",
        headers={"content-disposition": f'attachment; filename="{name}"'},
    )


async def erase_page(request: Request) -> Response:
    _employee(request)
    return render(request, "erase.html", section="data")


async def erase(request: Request) -> Response:
    identity = _employee(request)
    form = await checked_form(request)
    if form.get("confirm") != "yes":
        return render(request, "erase.html", 400, section="data", unconfirmed=True)
    await _backend(request).forget_me(identity.token)
    request.session.clear()
    return render(request, "erased.html")


async def healthz(request: Request) -> Response:
    """Liveness and readiness: the console holds no state, so serving requests is all it needs."""
    return Response("ok\n", media_type="text/plain")
