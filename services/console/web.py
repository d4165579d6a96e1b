"""The HTTP edge shared by every page: security headers, CSRF, the session's identity, the language, and
rendering a template in it. Pages live in pages.py."""

from __future__ import annotations

import hmac
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.console.i18n import LOCALES, Formats, negotiate, translations
from services.console.signin import Identity

TEMPLATES = Path(__file__).parent / "templates"
LANGUAGE_COOKIE = "catalyst_lang"
CSRF_FIELD = "csrf_token"
MAX_FIELD = 2000
# No script at all; styles and images only from the console itself; forms post only to it; no framing.
CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
    "base-uri 'none'; frame-ancestors 'none'"
)
SECURITY_HEADERS = (
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
    (b"cross-origin-opener-policy", b"same-origin"),
)


class SecurityHeaders:
    """Adds the headers above to every response; personal pages are never stored by caches."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                headers += [h for h in SECURITY_HEADERS if h[0] not in present]
                if b"cache-control" not in present:
                    headers.append((b"cache-control", b"no-store"))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, with_headers)


def _environment(locale: str) -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(default=True),
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.install_gettext_translations(translations(locale), newstyle=True)  # type: ignore[attr-defined]
    fmt = Formats(locale)
    env.filters.update(number=fmt.number, percent=fmt.percent, date=fmt.date, datetime=fmt.datetime)
    return env


ENVIRONMENTS = {locale: _environment(locale) for locale in LOCALES}


def csrf_token(request: Request) -> str:
    """The session's synchronizer token, made on first use; every form sends it back."""
    token = request.session.get("csrf")
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        request.session["csrf"] = token
    return token


async def checked_form(request: Request) -> FormData:
    """The posted form, after its CSRF token matched the session's (403 otherwise)."""
    form = await request.form(max_files=0, max_fields=20, max_part_size=4096)
    sent, expected = form.get(CSRF_FIELD), request.session.get("csrf")
    if not (isinstance(sent, str) and isinstance(expected, str) and hmac.compare_digest(sent, expected)):
        raise HTTPException(403, "csrf")
    return form


def field(form: FormData, name: str, limit: int = MAX_FIELD) -> str:
    """A text field of a form, stripped; 400 when it is too long or a file."""
    value = form.get(name, "")
    if not isinstance(value, str) or len(value) > limit:
        raise HTTPException(400, "field")
    return value.strip()


def locale_of(request: Request) -> str:
    return negotiate(request.headers.get("accept-language", "")[:512], request.cookies.get(LANGUAGE_COOKIE))


def identity_of(request: Request) -> Identity | None:
    return Identity.from_session(request.session.get("user"), time.time())


def safe_return_path(value: str) -> str:
    """Only a path on this site to go back to after switching language (no open redirect)."""
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/"
    return value


@dataclass(frozen=True)
class Flash:
    """A one-time note after a form was handled (stored as a key, translated when shown)."""

    key: str


def flash(request: Request, key: str) -> None:
    request.session["flash"] = key


def render(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    locale = locale_of(request)
    note = request.session.pop("flash", None)
    page = ENVIRONMENTS[locale].get_template(template).render(
        request=request,
        locale=locale,
        locales=LOCALES,
        identity=identity_of(request),
        csrf_token=csrf_token(request),
        flash=Flash(note) if isinstance(note, str) else None,
        **context,
    )
    return HTMLResponse(page, status_code=status, headers={"content-language": locale})
