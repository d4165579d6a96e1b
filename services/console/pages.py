"""The pages: each asks the services as the signed-in person, builds a view model (views.py) and renders it.
Every client input is checked here; a service's refusal becomes a page that says why."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable
from datetime import UTC, datetime
from typing import TypeVar
from urllib.parse import urlencode

from catalyst.recognition.v1 import recognition_pb2 as rec
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from services.common.audit import MAX_PURPOSE_CHARS
from services.common.auth import Role
from services.common.my_data import WINDOWS, document, has_figures
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


def _signed_in(request: Request, role: Role) -> Identity:
    identity = identity_of(request)
    if identity is None:
        raise SignInRequired
    if not identity.has(role):
        raise HTTPException(403, "role")
    return identity


def _employee(request: Request) -> Identity:
    return _signed_in(request, Role.EMPLOYEE)


def _query(request: Request, name: str, limit: int) -> str:
    """A query parameter, stripped; 400 when it is longer than any valid value."""
    value = request.query_params.get(name, "").strip()
    if len(value) > limit:
        raise HTTPException(400, name)
    return value


async def _or_none(call: Awaitable[T]) -> T | None:
    """The answer, or None when the service has nothing about the person yet (NOT_FOUND)."""
    try:
        return await call
    except BackendError as exc:
        if exc.failure is Failure.NOT_FOUND:
            return None
        raise


async def home(request: Request) -> Response:
    """Straight to the pages of the person's role: the programme's or the works council's, else their own."""
    identity = identity_of(request)
    if identity is not None:
        for role, path in ((Role.PROGRAMME_OWNER, "/programme"), (Role.WORKS_COUNCIL, "/council"),
                           (Role.EMPLOYEE, "/me")):
            if identity.has(role):
                return RedirectResponse(path, status_code=303)
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
    view = views.badges(held, progress)
    reasons = (await backend.catalogue(identity.token)).decline_reasons if view.invitations else []
    return render(request, "badges.html", view=view, reasons=reasons, section="badges")


async def answer_invitation(request: Request) -> Response:
    identity = _employee(request)
    form = await checked_form(request)
    badge, answer, reason = field(form, "badge", 64), field(form, "answer", 8), field(form, "reason", 500)
    if not badge or answer not in ("accept", "decline"):
        raise HTTPException(400, "answer")
    code = field(form, "reason_code", 64) if answer == "decline" else ""
    await _backend(request).respond_to_invitation(identity.token, badge, answer == "accept", reason, code)
    flash(request, "invitation_accepted" if answer == "accept" else "invitation_declined")
    return RedirectResponse("/me/badges", status_code=303)


async def consent(request: Request) -> Response:
    identity = _employee(request)
    backend = _backend(request)
    engagement = await _or_none(backend.engagement_data(identity.token))
    preferences = await backend.preferences(identity.token)
    view = views.consent(request.app.state.policy, engagement, preferences)
    return render(request, "consent.html", view=view, section="consent")


async def save_consent(request: Request) -> Response:
    identity = _employee(request)
    form = await checked_form(request)
    backend = _backend(request)
    if views.rankings_offered(request.app.state.policy):
        await backend.set_ranking_opt_out(identity.token, form.get("ranked") != "on")
    preferences = rec.Preferences(
        recognition_opt_out=form.get("recognition_opt_out") == "on",
        hidden_from_lists=form.get("hidden_from_lists") == "on",
        appreciations_shared=form.get("appreciations_shared") == "on",
    )
    await backend.set_preferences(identity.token, preferences)
    flash(request, "consent_saved")
    return RedirectResponse("/me/consent", status_code=303)


async def show_badge(request: Request) -> Response:
    identity = _employee(request)
    form = await checked_form(request)
    badge, shown = field(form, "badge", 64), field(form, "shown", 8)
    if not badge or shown not in ("yes", "no"):
        raise HTTPException(400, "badge")
    await _backend(request).set_badge_shown(identity.token, badge, shown == "yes")
    flash(request, "badge_shown" if shown == "yes" else "badge_hidden")
    return RedirectResponse("/me/badges", status_code=303)


async def my_programme(request: Request) -> Response:
    identity = _employee(request)
    record = (await _backend(request).programme(identity.token, "", "")).programme
    return render(request, "programme_me.html", view=views.programme(record), section="programme")


async def volunteer(request: Request) -> Response:
    identity = _employee(request)
    form = await checked_form(request)
    choice = field(form, "choice", 16)
    if choice not in ("volunteer", "withdraw"):
        raise HTTPException(400, "choice")
    answer = await _backend(request).volunteer(identity.token, choice == "withdraw")
    if choice == "withdraw":
        flash(request, "volunteer_withdrawn")
    elif answer.status == rec.AMBASSADOR_STATUS_INVITED:
        flash(request, "volunteer_invited")
    else:
        flash(request, "volunteer_noted")
    return RedirectResponse("/me/programme", status_code=303)


async def my_accesses(request: Request) -> Response:
    identity = _employee(request)
    page = await _backend(request).my_accesses(identity.token, _query(request, "page", 200))
    return render(request, "accesses_me.html", rows=views.access_rows(list(page.accesses)),
                  next_page=page.next_page_token, section="accesses")


async def my_data(request: Request) -> Response:
    _employee(request)
    return render(request, "data.html", section="data")


async def download(request: Request) -> Response:
    """Everything the services store about me, and who looked at it: the same document as `catalyst my-data`."""
    identity = _employee(request)
    backend, token = _backend(request), identity.token
    stored = await backend.engagement_data(token)
    score = await _or_none(backend.score(token)) if has_figures(stored) else None
    windows = WINDOWS if score is not None else ()
    explanations = dict(zip(windows, await asyncio.gather(*(backend.explain(token, w) for w in windows)), strict=True))
    export = document(
        identity.subject,
        await backend.feed_data(token),
        stored,
        score,
        explanations,
        await backend.my_data(token),
        await backend.my_accesses(token, ""),
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


def _purpose(request: Request) -> str:
    """Why the programme owner looks at people's data: stated on the page, sent with the call, audited."""
    return _query(request, "purpose", MAX_PURPOSE_CHARS)


async def programme_overview(request: Request) -> Response:
    """Figures about groups only (no person is named), so no purpose is asked for."""
    identity = _signed_in(request, Role.PROGRAMME_OWNER)
    backend = _backend(request)
    funnel, coverage, declines = await asyncio.gather(
        backend.funnel(identity.token), backend.coverage(identity.token), backend.declines(identity.token)
    )
    return render(request, "programme.html", funnel=views.funnel(funnel), coverage=views.coverage(coverage),
                  declines=declines, section="programme_owner")


async def candidates(request: Request) -> Response:
    identity = _signed_in(request, Role.PROGRAMME_OWNER)
    purpose, department = _purpose(request), _query(request, "department", 128)
    rows = None
    if purpose:
        found = await _backend(request).candidates(identity.token, department, purpose)
        rows = views.candidates(found)
    return render(request, "candidates.html", rows=rows, purpose=purpose, department=department,
                  section="candidates")


async def person(request: Request) -> Response:
    identity = _signed_in(request, Role.PROGRAMME_OWNER)
    purpose, employee = _purpose(request), _query(request, "employee", 128)
    if not employee:
        raise HTTPException(400, "employee")
    view = None
    catalogue = await _backend(request).catalogue(identity.token)
    if purpose:
        view = views.programme((await _backend(request).programme(identity.token, employee, purpose)).programme)
    return render(request, "person.html", view=view, employee=employee, purpose=purpose, catalogue=catalogue,
                  section="candidates")


def _legitimation(employee: str, change: str, value: str, hours: str, manager: str) -> rec.RecordLegitimationRequest:
    """The one change the form names; the service checks ids, hours and roles against its catalogue."""
    request = rec.RecordLegitimationRequest(employee_id=employee)
    if change == "time_budget":
        try:
            request.time_budget.hours_per_month = float(hours.replace(",", "."))
        except ValueError:
            raise HTTPException(400, "hours") from None
        request.time_budget.agreed_by_manager = manager
    elif change in ("offer_training", "complete_training", "grant_resource", "appreciation"):
        if not value:
            raise HTTPException(400, "value")
        setattr(request, change, value)
    else:
        raise HTTPException(400, "change")
    return request


async def record_legitimation(request: Request) -> Response:
    identity = _signed_in(request, Role.PROGRAMME_OWNER)
    form = await checked_form(request)
    employee = field(form, "employee", 128)
    if not employee:
        raise HTTPException(400, "employee")
    change = _legitimation(employee, field(form, "change", 32), field(form, "value", 500),
                           field(form, "hours", 16), field(form, "manager", 128))
    purpose = field(form, "purpose", MAX_PURPOSE_CHARS)
    await _backend(request).record_legitimation(identity.token, change, purpose)
    flash(request, "legitimation_recorded")
    query = urlencode({"employee": employee, "purpose": purpose})
    return RedirectResponse(f"/programme/person?{query}", status_code=303)


async def pilot_group(request: Request) -> Response:
    identity = _signed_in(request, Role.PROGRAMME_OWNER)
    purpose, size_text = _purpose(request), _query(request, "size", 6)
    if size_text and not size_text.isdigit():
        raise HTTPException(400, "size")
    size = int(size_text) if size_text else 0
    proposal = await _backend(request).pilot_group(identity.token, size, purpose) if purpose else None
    return render(request, "pilot.html", proposal=proposal, purpose=purpose, size=size_text, section="pilot")


async def calibration(request: Request) -> Response:
    """The proposal beside the thresholds in force: counts only, so no purpose is asked for. The works council
    reads it; only the programme owner gets the approve form."""
    identity = identity_of(request)
    if identity is None:
        raise SignInRequired
    if not (identity.has(Role.PROGRAMME_OWNER) or identity.has(Role.WORKS_COUNCIL)):
        raise HTTPException(403, "role")
    found = await _backend(request).calibration_proposals(identity.token)
    return render(request, "calibration.html", view=views.calibration(found),
                  may_approve=identity.has(Role.PROGRAMME_OWNER), section="calibration")


async def approve_calibration(request: Request) -> Response:
    identity = _signed_in(request, Role.PROGRAMME_OWNER)
    form = await checked_form(request)
    proposal_id = field(form, "proposal_id", 64)
    if not proposal_id:
        raise HTTPException(400, "proposal_id")
    await _backend(request).approve_calibration(identity.token, proposal_id)
    flash(request, "calibration_approved")
    return RedirectResponse("/programme/calibration", status_code=303)


async def council(request: Request) -> Response:
    identity = _signed_in(request, Role.WORKS_COUNCIL)
    backend = _backend(request)
    funnel, declines, summary = await asyncio.gather(
        backend.funnel(identity.token), backend.declines(identity.token), backend.summarise_accesses(identity.token)
    )
    return render(request, "council.html", policy=views.policy_rows(request.app.state.policy),
                  funnel=views.funnel(funnel), declines=declines, summary=summary, section="council")


async def audit_log(request: Request) -> Response:
    identity = _signed_in(request, Role.WORKS_COUNCIL)
    employee, actor = _query(request, "employee", 128), _query(request, "actor", 128)
    if employee and actor:
        raise HTTPException(400, "employee")
    page = await _backend(request).accesses(identity.token, employee, actor, _query(request, "page", 200))
    return render(request, "audit.html", rows=views.access_rows(list(page.accesses)), employee=employee,
                  actor=actor, next_page=page.next_page_token, section="audit")


async def healthz(request: Request) -> Response:
    """Liveness and readiness: the console holds no state, so serving requests is all it needs."""
    return Response("ok\n", media_type="text/plain")
