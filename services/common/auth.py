"""Bearer tokens (HS256 JWT): minting for local use, and checking on every gRPC call.

The acting employee comes from the token's subject, never from a request body.
"""

from __future__ import annotations

import contextvars
import enum
import time
from dataclasses import dataclass

import jwt

from services.common.errors import PermissionDenied, Unauthenticated


class Role(enum.StrEnum):
    """The roles the identity provider grants; each call names the ones it needs."""

    EMPLOYEE = "employee"
    PROGRAMME_OWNER = "programme_owner"  # comms: invitations, endorsements, candidates, reports, moderation
    HR = "hr"  # the directory and leavers
    WORKS_COUNCIL = "works_council"  # reads the audit log and its aggregates
    OPERATOR = "operator"  # runs the system: operational calls, no personal figures
    SERVICE = "service"  # machine clients, e.g. ingestion from an existing intranet


@dataclass(frozen=True)
class Principal:
    subject: str
    roles: frozenset[Role]

    def has(self, role: Role) -> bool:
        return role in self.roles

    def require(self, *roles: Role) -> None:
        """Raises PermissionDenied unless the caller holds one of the roles."""
        if not any(r in self.roles for r in roles):
            wanted = " or ".join(r.value for r in roles)
            raise PermissionDenied(f"this call needs the {wanted} role; your token has {self.describe_roles()}")

    def describe_roles(self) -> str:
        return ", ".join(sorted(r.value for r in self.roles)) or "no role"


_current: contextvars.ContextVar[Principal | None] = contextvars.ContextVar("catalyst_principal", default=None)


def current_principal() -> Principal:
    """The caller of the gRPC method being handled (set by the auth interceptor)."""
    principal = _current.get()
    if principal is None:
        raise Unauthenticated("no authenticated caller")
    return principal


def set_current_principal(principal: Principal | None) -> contextvars.Token:
    return _current.set(principal)


class TokenAuthority:
    def __init__(self, secret: str, issuer: str = "catalyst", leeway_seconds: int = 30) -> None:
        self._secret = secret
        self._issuer = issuer
        self._leeway = leeway_seconds

    def mint(self, subject: str, roles: list[Role] | tuple[Role, ...], ttl_seconds: int = 3600) -> str:
        now = int(time.time())
        claims = {
            "sub": subject,
            "roles": [Role(r).value for r in roles],
            "iss": self._issuer,
            "iat": now,
            "exp": now + ttl_seconds,
        }
        return jwt.encode(claims, self._secret, algorithm="HS256")

    def verify(self, token: str) -> Principal:
        try:
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=["HS256"],
                issuer=self._issuer,
                leeway=self._leeway,
                options={"require": ["sub", "exp", "iss"]},
            )
        except jwt.ExpiredSignatureError:
            raise Unauthenticated("the bearer token has expired; request a new one") from None
        except jwt.InvalidSignatureError:
            raise Unauthenticated("the bearer token's signature is not valid for this system") from None
        except jwt.InvalidTokenError as exc:
            raise Unauthenticated(f"the bearer token is not valid: {exc}") from None
        try:
            roles = frozenset(Role(r) for r in claims.get("roles", []))
        except ValueError:
            raise Unauthenticated(f"the bearer token names an unknown role: {claims.get('roles')}") from None
        subject = str(claims["sub"]).strip()
        if not subject:
            raise Unauthenticated("the bearer token has an empty subject")
        return Principal(subject=subject, roles=roles)

    def from_metadata(self, metadata: tuple[tuple[str, str | bytes], ...] | None) -> Principal:
        """Reads `authorization: Bearer <token>` from gRPC metadata."""
        for key, value in metadata or ():
            if key.lower() == "authorization":
                text = value.decode() if isinstance(value, bytes) else value
                scheme, _, token = text.partition(" ")
                if scheme.lower() != "bearer" or not token.strip():
                    raise Unauthenticated("the authorization header must be 'Bearer <token>'")
                return self.verify(token.strip())
        raise Unauthenticated("missing bearer token: send metadata 'authorization: Bearer <token>'")
