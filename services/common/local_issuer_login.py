"""The local issuer's interactive sign-in (development and `make demo` only): the authorization code flow with
PKCE (RFC 7636, S256) for the web console, where a person chooses to sign in as a simulated employee,
programme owner or works council member. Tokens are minted with the local issuer's own signing keys.

Framework-free on purpose: the issuer's HTTP server hands each request to `handle` and sends the Reply.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import json
import re
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.common.auth import Role
from services.common.local_issuer import LocalIssuer

AUTHORIZE_PATH = "/authorize"
TOKEN_PATH = "/token"
# The roles a person can try the console as; each is an employee as well.
SIGN_IN_ROLES: dict[str, str] = {
    Role.EMPLOYEE.value: "a simulated employee",
    Role.PROGRAMME_OWNER.value: "a programme owner (comms)",
    Role.WORKS_COUNCIL.value: "a works council member",
}
_VERIFIER_OR_CHALLENGE = re.compile(r"^[A-Za-z0-9._~-]{43,128}$")
_SUBJECT = re.compile(r"^[A-Za-z0-9._@:-]{1,128}$")
_MAX_BODY = 16_384


class LoginSettings(BaseSettings):
    """CATALYST_ISSUER_PUBLIC_URL: where browsers reach the issuer, when it differs from the issuer URL the
    services use (docker compose: the services say http://issuer:9107, a browser says http://localhost:9107)."""

    model_config = SettingsConfigDict(env_prefix="CATALYST_", extra="ignore", frozen=True)

    issuer_public_url: str = Field("", description="the issuer as browsers reach it; empty: the issuer URL")
    issuer_code_seconds: float = Field(120.0, gt=0, le=600, description="how long an authorization code is good")
    issuer_token_seconds: int = Field(3600, gt=0, le=86_400, description="lifetime of the tokens it issues")


@dataclass(frozen=True)
class Reply:
    status: int
    content_type: str
    body: bytes
    headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class _Grant:
    client_id: str
    redirect_uri: str
    code_challenge: str
    nonce: str
    subject: str
    roles: tuple[Role, ...]
    expires: float


class BadRequest(Exception):
    """A request the issuer refuses, with a reason shown to the person or returned to the client."""


def s256(verifier: str) -> str:
    """The PKCE S256 challenge of a code verifier."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def _one(params: dict[str, list[str]], name: str, required: bool = True) -> str:
    values = params.get(name, [])
    if len(values) > 1:
        raise BadRequest(f"{name} is given more than once")
    value = values[0].strip() if values else ""
    if required and not value:
        raise BadRequest(f"{name} is missing")
    if len(value) > 2048:
        raise BadRequest(f"{name} is too long")
    return value


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


class InteractiveLogin:
    """/authorize (a page, then the person's choice) and /token (code plus verifier for tokens). Codes live in
    memory for a short while and are good once: the local issuer is one process."""

    def __init__(
        self, issuer: LocalIssuer, settings: LoginSettings | None = None, clock: Callable[[], float] = time.time
    ) -> None:
        self._issuer = issuer
        self._settings = settings or LoginSettings()
        self._clock = clock
        self._grants: dict[str, _Grant] = {}
        self._lock = threading.Lock()

    @property
    def public_url(self) -> str:
        return (self._settings.issuer_public_url or self._issuer.issuer).rstrip("/")

    def discovery(self) -> dict[str, Any]:
        """What the discovery document adds for clients that sign people in."""
        return {
            "authorization_endpoint": self.public_url + AUTHORIZE_PATH,
            "token_endpoint": self._issuer.issuer.rstrip("/") + TOKEN_PATH,
            "response_types_supported": ["code"],
            "grant_types_supported": ["authorization_code"],
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": ["none"],
            "subject_types_supported": ["public"],
            "scopes_supported": ["openid"],
        }

    def handle(self, method: str, path: str, query: str, body: bytes) -> Reply | None:
        """The reply to a request for one of these endpoints; None for any other path."""
        if path not in (AUTHORIZE_PATH, TOKEN_PATH):
            return None
        if len(body) > _MAX_BODY:
            return _page(413, "The request is too large.")
        form = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
        if path == TOKEN_PATH:
            return self._token(form) if method == "POST" else _page(405, "Use POST for the token endpoint.")
        params = parse_qs(query, keep_blank_values=True)
        try:
            if method == "GET":
                return self._authorize_page(params)
            if method == "POST":
                return self._authorize(form)
        except BadRequest as exc:
            return _page(400, f"This sign-in request cannot be served: {exc}.")
        return _page(405, "Use GET or POST for the authorization endpoint.")

    def _request(self, params: dict[str, list[str]]) -> dict[str, str]:
        """The checked parameters of an authorization request."""
        request = {
            name: _one(params, name, required)
            for name, required in (
                ("response_type", True),
                ("client_id", True),
                ("redirect_uri", True),
                ("scope", True),
                ("state", False),
                ("nonce", False),
                ("code_challenge", True),
                ("code_challenge_method", True),
            )
        }
        if request["response_type"] != "code":
            raise BadRequest("response_type must be 'code' (the authorization code flow)")
        redirect = urlsplit(request["redirect_uri"])
        if redirect.scheme not in ("http", "https") or not redirect.netloc or redirect.fragment:
            raise BadRequest("redirect_uri must be an absolute http(s) URL without a fragment")
        if "openid" not in request["scope"].split():
            raise BadRequest("scope must include 'openid'")
        if request["code_challenge_method"] != "S256":
            raise BadRequest("code_challenge_method must be S256 (PKCE)")
        if not _VERIFIER_OR_CHALLENGE.match(request["code_challenge"]):
            raise BadRequest("code_challenge is not an S256 challenge")
        return request

    def _authorize_page(self, params: dict[str, list[str]]) -> Reply:
        request = self._request(params)
        hidden = "".join(
            f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">' for k, v in request.items()
        )
        choices = "".join(
            f'<p><input type="radio" name="role" id="role-{role}" value="{role}"{" checked" if i == 0 else ""}>'
            f' <label for="role-{role}">Sign in as {html.escape(text)}</label></p>'
            for i, (role, text) in enumerate(SIGN_IN_ROLES.items())
        )
        body = (
            "<h1>Catalyst local sign-in</h1>"
            "<p>This issuer is for development and demos only: it signs anybody in as the person they name.</p>"
            f'<form method="post" action="{AUTHORIZE_PATH}">{hidden}'
            '<p><label for="subject">Employee id</label> '
            '<input id="subject" name="subject" required maxlength="128" autocomplete="username"></p>'
            f"<fieldset><legend>Role</legend>{choices}</fieldset>"
            f'<p><button type="submit">Sign in</button></p></form>'
            f"<p>You return to {html.escape(_origin(request['redirect_uri']))}.</p>"
        )
        csp = f"default-src 'none'; form-action 'self' {_origin(request['redirect_uri'])}; base-uri 'none'"
        return _page(200, body, csp=csp)

    def _authorize(self, form: dict[str, list[str]]) -> Reply:
        request = self._request(form)
        subject = _one(form, "subject")
        if not _SUBJECT.match(subject):
            raise BadRequest("the employee id may hold letters, digits and . _ @ : - (at most 128)")
        role = _one(form, "role")
        if role not in SIGN_IN_ROLES:
            raise BadRequest(f"role must be one of {', '.join(SIGN_IN_ROLES)}")
        roles = tuple(dict.fromkeys((Role.EMPLOYEE, Role(role))))
        code = secrets.token_urlsafe(32)
        grant = _Grant(
            request["client_id"],
            request["redirect_uri"],
            request["code_challenge"],
            request["nonce"],
            subject,
            roles,
            self._clock() + self._settings.issuer_code_seconds,
        )
        with self._lock:
            now = self._clock()
            for stale in [c for c, g in self._grants.items() if g.expires <= now]:
                del self._grants[stale]
            self._grants[code] = grant
        answer = {"code": code, "iss": self._issuer.issuer}
        if request["state"]:
            answer["state"] = request["state"]
        separator = "&" if urlsplit(request["redirect_uri"]).query else "?"
        location = request["redirect_uri"] + separator + urlencode(answer)
        return Reply(303, "text/plain", b"", (("Location", location), ("Cache-Control", "no-store")))

    def _token(self, form: dict[str, list[str]]) -> Reply:
        try:
            if _one(form, "grant_type") != "authorization_code":
                return _error("unsupported_grant_type", "only the authorization_code grant is supported")
            code, client_id = _one(form, "code"), _one(form, "client_id")
            redirect_uri, verifier = _one(form, "redirect_uri"), _one(form, "code_verifier")
        except BadRequest as exc:
            return _error("invalid_request", str(exc))
        with self._lock:
            grant = self._grants.pop(code, None)
        if grant is None or grant.expires <= self._clock():
            return _error("invalid_grant", "the code is unknown, used or expired")
        if client_id != grant.client_id or redirect_uri != grant.redirect_uri:
            return _error("invalid_grant", "the code was issued to another client or redirect_uri")
        if not _VERIFIER_OR_CHALLENGE.match(verifier) or not hmac.compare_digest(s256(verifier), grant.code_challenge):
            return _error("invalid_grant", "the code_verifier does not match the code_challenge (PKCE)")
        ttl = self._settings.issuer_token_seconds
        access = self._issuer.mint(grant.subject, grant.roles, ttl)
        id_claims: dict[str, Any] = {"aud": grant.client_id, "auth_time": int(self._clock())}
        if grant.nonce:
            id_claims["nonce"] = grant.nonce
        id_token = self._issuer.mint(grant.subject, grant.roles, ttl, **id_claims)
        answer = {"access_token": access, "id_token": id_token, "token_type": "Bearer", "expires_in": ttl}
        return _json(200, {**answer, "scope": "openid"})


def _json(status: int, document: dict[str, Any]) -> Reply:
    headers = (("Cache-Control", "no-store"), ("Pragma", "no-cache"))
    return Reply(status, "application/json", json.dumps(document).encode(), headers)


def _error(error: str, description: str) -> Reply:
    return _json(400, {"error": error, "error_description": description})


def _page(status: int, body: str, csp: str = "default-src 'none'; base-uri 'none'") -> Reply:
    document = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Catalyst local sign-in</title></head>'
        f"<body>{body if status == 200 else '<p>' + html.escape(body) + '</p>'}</body></html>"
    )
    headers = (("Content-Security-Policy", csp), ("Cache-Control", "no-store"), ("X-Frame-Options", "DENY"))
    return Reply(status, "text/html; charset=utf-8", document.encode(), headers)
