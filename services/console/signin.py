"""Who is signed in, and the sign-in port: the OpenID Connect authorization code flow with PKCE."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from starlette.requests import Request
from starlette.responses import Response

from services.common.auth import Role


class SignInFailed(Exception):
    """The identity provider's answer cannot sign anybody in (refused, expired, tampered, unreachable)."""


@dataclass(frozen=True)
class Identity:
    """The signed-in person as the session keeps it: the access token the services verify, and what the
    pages need to know about it (subject and roles come from the verified token, never from a form)."""

    subject: str
    roles: frozenset[Role]
    token: str
    expires_at: float

    def has(self, role: Role) -> bool:
        return role in self.roles

    def to_session(self) -> dict[str, Any]:
        return {"sub": self.subject, "roles": sorted(r.value for r in self.roles), "token": self.token,
                "exp": self.expires_at}

    @classmethod
    def from_session(cls, data: object, now: float) -> Identity | None:
        """The identity a session holds, None if it holds none, an unreadable one or an expired one."""
        if not isinstance(data, dict):
            return None
        subject, token, expires = data.get("sub"), data.get("token"), data.get("exp")
        roles = data.get("roles")
        if not (isinstance(subject, str) and isinstance(token, str) and isinstance(expires, int | float)):
            return None
        if not isinstance(roles, list) or expires <= now:
            return None
        known = {r.value: r for r in Role}
        return cls(subject, frozenset(known[r] for r in roles if r in known), token, float(expires))


class SignIn(Protocol):
    async def redirect(self, request: Request, redirect_uri: str) -> Response:
        """Sends the browser to the identity provider."""

    async def complete(self, request: Request) -> Identity:
        """The identity of the provider's answer at the redirect URL; SignInFailed if there is none."""
