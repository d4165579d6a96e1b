"""A small OIDC issuer for local use, tests and the demo: signing keys in a directory, tokens minted with
the newest key, and the public keys as the JWKS the services fetch (served by `python -m services.issuer`).

In production tokens come from the company's identity provider; minting refuses there.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

from services.common.auth import Role
from services.common.settings import CommonSettings

Algorithm = Literal["ES256", "RS256"]
KEY_SUFFIX = ".pem"


class MintingRefused(SystemExit):
    """Minting in production mode: a command that tries it ends with this message."""


def _new_private_key(algorithm: Algorithm) -> PrivateKeyTypes:
    if algorithm == "RS256":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return ec.generate_private_key(ec.SECP256R1())


def _algorithm_of(key: PrivateKeyTypes) -> Algorithm:
    return "RS256" if isinstance(key, rsa.RSAPrivateKey) else "ES256"


@dataclass(frozen=True)
class SigningKey:
    kid: str
    private: PrivateKeyTypes

    @property
    def algorithm(self) -> Algorithm:
        return _algorithm_of(self.private)

    def public_jwk(self) -> dict[str, Any]:
        algo = jwt.get_algorithm_by_name(self.algorithm)
        jwk = json.loads(algo.to_jwk(self.private.public_key()))  # type: ignore[union-attr]
        return {**jwk, "kid": self.kid, "use": "sig", "alg": self.algorithm}


class LocalIssuer:
    """Keys are files `<sequence>-<random>.pem` in `directory`; the last in name order signs, all verify."""

    def __init__(
        self, directory: Path, issuer: str, audience: str, roles_claim: str = "roles", algorithm: Algorithm = "ES256"
    ) -> None:
        self.directory = directory
        self.issuer = issuer
        self.audience = audience
        self.roles_claim = roles_claim
        self.algorithm = algorithm

    def _files(self) -> list[Path]:
        return sorted(self.directory.glob(f"*{KEY_SUFFIX}")) if self.directory.is_dir() else []

    def _write(self, sequence: int) -> None:
        """Adds a key; creation is atomic (link of a finished file), so concurrent starts keep one key."""
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        pem = _new_private_key(self.algorithm).private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        temporary = self.directory / f".{uuid.uuid4().hex}.tmp"
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(pem)
        try:
            os.link(temporary, self.directory / f"{sequence:04d}-{uuid.uuid4().hex[:8]}{KEY_SUFFIX}")
        finally:
            temporary.unlink()

    def ensure_key(self) -> None:
        """Creates the first signing key unless one exists (idempotent)."""
        if not self._files():
            self._write(1)

    def rotate(self) -> str:
        """Adds a new signing key; the old ones stay published so tokens they signed stay valid."""
        files = self._files()
        self._write(int(files[-1].name.split("-")[0]) + 1 if files else 1)
        return self.keys()[-1].kid

    def keys(self) -> list[SigningKey]:
        return [
            SigningKey(path.name.removesuffix(KEY_SUFFIX), serialization.load_pem_private_key(path.read_bytes(), None))
            for path in self._files()
        ]

    def jwks(self) -> dict[str, Any]:
        return {"keys": [k.public_jwk() for k in self.keys()]}

    def discovery(self, jwks_uri: str) -> dict[str, Any]:
        return {
            "issuer": self.issuer,
            "jwks_uri": jwks_uri,
            "id_token_signing_alg_values_supported": sorted({k.algorithm for k in self.keys()}),
        }

    def mint(self, subject: str, roles: list[Role] | tuple[Role, ...], ttl_seconds: int = 3600, **claims: Any) -> str:
        """A token as the identity provider would issue it: roles at the configured claim path."""
        self.ensure_key()
        key = self.keys()[-1]
        now = int(time.time())
        body: dict[str, Any] = {
            "sub": subject,
            "iss": self.issuer,
            "aud": self.audience,
            "iat": now,
            "exp": now + ttl_seconds,
        }
        *parents, leaf = self.roles_claim.split(".")
        node = body
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = [Role(r).value for r in roles]
        return jwt.encode({**body, **claims}, key.private, algorithm=key.algorithm, headers={"kid": key.kid})


def local_issuer(settings: CommonSettings) -> LocalIssuer:
    """The local issuer of these settings; refuses in production, where only the identity provider issues."""
    if settings.env == "production":
        raise MintingRefused(
            "CATALYST_ENV is production: tokens come from the company's identity provider "
            f"({settings.oidc_issuer}), not from a local key; ask it for a token"
        )
    return LocalIssuer(settings.issuer_key_dir, settings.oidc_issuer, settings.oidc_audience, settings.oidc_roles_claim)
