"""Sign-in through the company's OpenID Connect provider with Authlib: discovery, the authorization code
flow with PKCE (S256) as a public client, the ID token checked (signature, issuer, audience, nonce), and
the access token verified as every service verifies it, which gives the subject and the roles."""

from __future__ import annotations

import time

from authlib.common.errors import AuthlibBaseError
from authlib.integrations.starlette_client import OAuth
from httpx2 import HTTPError
from starlette.requests import Request
from starlette.responses import Response

from services.common.auth import TokenVerifier, verifier_for
from services.common.errors import Unauthenticated, Unavailable
from services.console.config import ConsoleSettings
from services.console.signin import Identity, SignInFailed

DISCOVERY = "/.well-known/openid-configuration"


class OidcSignIn:
    def __init__(self, settings: ConsoleSettings, verifier: TokenVerifier | None = None) -> None:
        self._oauth = OAuth()
        self._oauth.register(
            "catalyst",
            client_id=settings.console_client_id,
            server_metadata_url=settings.oidc_issuer.rstrip("/") + DISCOVERY,
            client_kwargs={
                "scope": "openid",
                "code_challenge_method": "S256",
                "token_endpoint_auth_method": "none",
                "timeout": settings.call_timeout_seconds,
            },
        )
        self._verifier = verifier or verifier_for(settings)

    async def redirect(self, request: Request, redirect_uri: str) -> Response:
        try:
            return await self._oauth.catalyst.authorize_redirect(request, redirect_uri)
        except (HTTPError, AuthlibBaseError, ValueError, KeyError) as exc:
            raise SignInFailed(f"the identity provider cannot be reached ({exc})") from None

    async def complete(self, request: Request) -> Identity:
        if "error" in request.query_params:
            raise SignInFailed(request.query_params.get("error_description") or request.query_params["error"])
        try:
            token = await self._oauth.catalyst.authorize_access_token(request)
        except (HTTPError, AuthlibBaseError, ValueError, KeyError, TypeError) as exc:
            raise SignInFailed(str(exc) or type(exc).__name__) from None
        access = token.get("access_token")
        if not isinstance(access, str):
            raise SignInFailed("the identity provider sent no access token")
        try:
            principal = await self._verifier.authenticate([("authorization", f"Bearer {access}")])
        except (Unauthenticated, Unavailable) as exc:
            raise SignInFailed(str(exc)) from None
        expires = token.get("expires_at") or time.time() + float(token.get("expires_in") or 300)
        return Identity(principal.subject, principal.roles, access, float(expires))
