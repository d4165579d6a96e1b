"""Bearer tokens: OIDC access tokens of the company's identity provider, checked on every gRPC call.

A token is trusted when its signature matches a key the issuer publishes (JWKS, RS256 or ES256), and its
issuer, audience and lifetime are right. The acting employee is the token's subject, never a request body;
the roles come from a configurable claim (a dotted path such as `realm_access.roles` reads Keycloak's).
"""

from __future__ import annotations

import asyncio
import contextvars
import enum
import json
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

import jwt
from jwt import PyJWK, PyJWKClient

from services.common.errors import PermissionDenied, Unauthenticated, Unavailable
from services.common.settings import CommonSettings

ALGORITHMS = ("RS256", "ES256")
REQUIRED_CLAIMS = ("sub", "iss", "aud", "exp", "iat")


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


def roles_from(claims: dict[str, Any], path: str) -> frozenset[Role]:
    """Catalyst's roles in the claim at `path` (a list, or a space-separated string); the identity provider's
    other roles (e.g. Keycloak's offline_access) are not Catalyst's business and are left out."""
    value: Any = claims
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    names = value.split() if isinstance(value, str) else value if isinstance(value, list) else []
    known = {r.value: r for r in Role}
    return frozenset(known[n] for n in names if isinstance(n, str) and n in known)


def bearer_token(metadata: Iterable[tuple[str, str | bytes]] | None) -> str:
    """The token of `authorization: Bearer <token>` in gRPC metadata."""
    for key, value in metadata or ():
        if key.lower() == "authorization":
            text = value.decode() if isinstance(value, bytes) else value
            scheme, _, token = text.partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                raise Unauthenticated("the authorization header must be 'Bearer <token>'")
            return token.strip()
    raise Unauthenticated("missing bearer token: send metadata 'authorization: Bearer <token>'")


class KeySource(Protocol):
    """The issuer's public keys by key id: `cached` never waits, `fetch` may go to the network."""

    def cached(self, kid: str) -> PyJWK | None: ...

    def fetch(self, kid: str) -> PyJWK: ...


class JwksKeys:
    """The issuer's JWKS through PyJWT's client: the set is cached for a while, an unknown key id fetches it
    again (key rotation), at most once per refetch interval."""

    def __init__(self, issuer: str, jwks_url: str, cache_seconds: float, refetch_seconds: float) -> None:
        self._issuer = issuer
        self._jwks_url = jwks_url
        self._cache_seconds = cache_seconds
        self._refetch_seconds = refetch_seconds
        self._client: PyJWKClient | None = None

    def _discover(self) -> str:
        url = self._issuer.rstrip("/") + "/.well-known/openid-configuration"
        with urllib.request.urlopen(url, timeout=5) as response:
            document = json.load(response)
        if document.get("issuer") != self._issuer:
            raise Unauthenticated(f"the identity provider at {url} names issuer {document.get('issuer')!r}")
        return str(document["jwks_uri"])

    def _jwks(self) -> PyJWKClient:
        if self._client is None:
            url = self._jwks_url or self._discover()
            self._client = PyJWKClient(
                url, lifespan=self._cache_seconds, cooldown_duration=self._refetch_seconds, timeout=5
            )
        return self._client

    def cached(self, kid: str) -> PyJWK | None:
        cache = self._client.jwk_set_cache if self._client is not None else None
        keys = cache.get() if cache is not None else None
        if isinstance(keys, jwt.PyJWKSet):
            return next((k for k in keys.keys if k.key_id == kid), None)
        return None

    def fetch(self, kid: str) -> PyJWK:
        try:
            return self._jwks().get_signing_key(kid)
        except jwt.PyJWKClientConnectionError as exc:
            raise Unavailable(f"the identity provider's keys cannot be fetched right now ({exc}); retry") from None
        except OSError as exc:
            raise Unavailable(f"the identity provider at {self._issuer} is not reachable ({exc}); retry") from None
        except jwt.PyJWKClientError:
            raise Unauthenticated(
                f"the bearer token is signed with key {kid!r}, which the identity provider {self._issuer} "
                "does not publish"
            ) from None


class TokenVerifier:
    """Turns a bearer token into the calling Principal, or refuses it with a reason a person understands."""

    def __init__(self, issuer: str, audience: str, keys: KeySource, roles_claim: str, leeway_seconds: int) -> None:
        self._issuer = issuer
        self._audience = audience
        self._keys = keys
        self._roles_claim = roles_claim
        self._leeway = leeway_seconds

    async def authenticate(self, metadata: Iterable[tuple[str, str | bytes]] | None) -> Principal:
        """The caller of a gRPC call; fetching keys (rarely: start, rotation) runs off the event loop."""
        token = bearer_token(metadata)
        kid = self._kid(token)
        key = self._keys.cached(kid) or await asyncio.to_thread(self._keys.fetch, kid)
        return self.verify(token, key)

    def _kid(self, token: str) -> str:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError:
            raise Unauthenticated("the bearer token is not a JWT") from None
        if header.get("alg") not in ALGORITHMS:
            raise Unauthenticated(
                f"the bearer token is signed with {header.get('alg')!r}; tokens of the identity provider are "
                f"signed with {' or '.join(ALGORITHMS)}"
            )
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise Unauthenticated("the bearer token names no signing key (no 'kid' in its header)")
        return kid

    def verify(self, token: str, key: PyJWK) -> Principal:
        """Checks the token against one of the issuer's keys (the algorithm is the key's, never the token's)."""
        try:
            claims = jwt.decode(
                token,
                key.key,
                algorithms=[key.algorithm_name] if key.algorithm_name in ALGORITHMS else list(ALGORITHMS),
                issuer=self._issuer,
                audience=self._audience,
                leeway=self._leeway,
                options={"require": list(REQUIRED_CLAIMS)},
            )
        except jwt.ExpiredSignatureError:
            raise Unauthenticated("the bearer token has expired; request a new one") from None
        except jwt.ImmatureSignatureError:
            raise Unauthenticated("the bearer token is not valid yet (check the clocks)") from None
        except jwt.InvalidSignatureError:
            raise Unauthenticated("the bearer token's signature does not match the identity provider's key") from None
        except jwt.InvalidIssuerError:
            raise Unauthenticated(f"the bearer token was not issued by {self._issuer}, the trusted issuer") from None
        except jwt.InvalidAudienceError:
            raise Unauthenticated(
                f"the bearer token is not meant for this system (audience {self._audience!r})"
            ) from None
        except jwt.MissingRequiredClaimError as exc:
            raise Unauthenticated(f"the bearer token lacks the {exc.claim!r} claim") from None
        except jwt.InvalidTokenError as exc:
            raise Unauthenticated(f"the bearer token is not valid: {exc}") from None
        subject = str(claims["sub"]).strip()
        if not subject:
            raise Unauthenticated("the bearer token has an empty subject")
        return Principal(subject=subject, roles=roles_from(claims, self._roles_claim))


def verifier_for(settings: CommonSettings) -> TokenVerifier:
    """The verifier a service builds from its settings: the configured issuer's JWKS, fetched when needed."""
    keys = JwksKeys(
        settings.oidc_issuer,
        settings.oidc_jwks_url,
        settings.oidc_jwks_cache_seconds,
        settings.oidc_jwks_refetch_seconds,
    )
    return TokenVerifier(
        settings.oidc_issuer, settings.oidc_audience, keys, settings.oidc_roles_claim, settings.oidc_leeway_seconds
    )
