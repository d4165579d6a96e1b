"""Token verification with in-memory keys: algorithms, claims, the roles claim, key look-ups, and the
messages a caller gets."""

from __future__ import annotations

from pathlib import Path

import jwt
import pytest
from jwt import PyJWK

from services.common.auth import Principal, Role, TokenVerifier, roles_from
from services.common.errors import PermissionDenied, Unauthenticated
from services.common.local_issuer import Algorithm, LocalIssuer
from services.common.settings import CommonSettings

ISSUER = "https://login.example.com/realms/company"


class CountingKeys:
    """A KeySource over one issuer's JWKS that counts network fetches."""

    def __init__(self, issuer: LocalIssuer) -> None:
        self.issuer = issuer
        self.known: dict[str, PyJWK] = {}
        self.fetches = 0

    def cached(self, kid: str) -> PyJWK | None:
        return self.known.get(kid)

    def fetch(self, kid: str) -> PyJWK:
        self.fetches += 1
        self.known = {k["kid"]: PyJWK(k) for k in self.issuer.jwks()["keys"]}
        if kid not in self.known:
            raise Unauthenticated(f"unknown key {kid}")
        return self.known[kid]


def issuer(tmp_path: Path, algorithm: Algorithm = "ES256", roles_claim: str = "roles") -> LocalIssuer:
    return LocalIssuer(tmp_path / algorithm, ISSUER, "catalyst", roles_claim, algorithm)


def verifier(keys: CountingKeys, roles_claim: str = "roles") -> TokenVerifier:
    return TokenVerifier(ISSUER, "catalyst", keys, roles_claim, leeway_seconds=0)


def bearer(token: str) -> tuple[tuple[str, str]]:
    return (("authorization", f"Bearer {token}"),)


@pytest.mark.parametrize("algorithm", ["RS256", "ES256"])
async def test_tokens_of_both_algorithms_name_the_caller_and_roles(tmp_path: Path, algorithm: Algorithm) -> None:
    idp = issuer(tmp_path, algorithm)
    principal = await verifier(CountingKeys(idp)).authenticate(bearer(idp.mint("e-1", [Role.HR, Role.EMPLOYEE])))
    assert principal == Principal("e-1", frozenset({Role.HR, Role.EMPLOYEE}))


async def test_keys_are_fetched_once_and_again_only_for_an_unknown_key_id(tmp_path: Path) -> None:
    idp = issuer(tmp_path)
    keys = CountingKeys(idp)
    check = verifier(keys)
    for _ in range(3):
        await check.authenticate(bearer(idp.mint("e-1", [Role.EMPLOYEE])))
    assert keys.fetches == 1
    idp.rotate()
    await check.authenticate(bearer(idp.mint("e-1", [Role.EMPLOYEE])))
    assert keys.fetches == 2


@pytest.mark.parametrize(
    ("claims", "reason"),
    [
        ({"exp": 1}, "expired"),  # times far from now: the parameters are made when the suite starts
        ({"nbf": 2**40}, "not valid yet"),
        ({"aud": "another-app"}, "not meant for this system"),
        ({"iss": "https://evil.example.com"}, "not issued by"),
        ({"sub": ""}, "empty subject"),
    ],
)
async def test_wrong_claims_are_refused_with_a_reason(tmp_path: Path, claims: dict, reason: str) -> None:
    idp = issuer(tmp_path)
    with pytest.raises(Unauthenticated, match=reason):
        await verifier(CountingKeys(idp)).authenticate(bearer(idp.mint("e-1", [Role.EMPLOYEE], **claims)))


async def test_a_token_without_a_required_claim_is_refused(tmp_path: Path) -> None:
    idp = issuer(tmp_path)
    idp.ensure_key()
    key = idp.keys()[-1]
    token = jwt.encode(
        {"sub": "e-1", "iss": ISSUER, "aud": "catalyst", "exp": 2**40}, key.private, "ES256", {"kid": key.kid}
    )
    with pytest.raises(Unauthenticated, match="lacks the 'iat' claim"):
        await verifier(CountingKeys(idp)).authenticate(bearer(token))


async def test_shared_secrets_and_headers_without_key_id_are_refused(tmp_path: Path) -> None:
    check = verifier(CountingKeys(issuer(tmp_path)))
    with pytest.raises(Unauthenticated, match="signed with 'HS256'"):
        await check.authenticate(bearer(jwt.encode({"sub": "e-1"}, "x" * 32, algorithm="HS256")))
    idp = issuer(tmp_path)
    idp.ensure_key()
    no_kid = jwt.encode({"sub": "e-1"}, idp.keys()[-1].private, algorithm="ES256")
    with pytest.raises(Unauthenticated, match="no 'kid'"):
        await check.authenticate(bearer(no_kid))
    with pytest.raises(Unauthenticated, match="missing bearer token"):
        await check.authenticate(())


def test_roles_come_from_a_configurable_claim_and_foreign_roles_are_ignored() -> None:
    keycloak = {"realm_access": {"roles": ["offline_access", "works_council", "employee"]}}
    assert roles_from(keycloak, "realm_access.roles") == {Role.WORKS_COUNCIL, Role.EMPLOYEE}
    assert roles_from({"roles": "hr operator"}, "roles") == {Role.HR, Role.OPERATOR}
    assert roles_from({"roles": 7}, "roles") == frozenset()
    assert roles_from({}, "realm_access.roles") == frozenset()


async def test_the_roles_claim_path_is_used_when_minting_and_verifying(tmp_path: Path) -> None:
    idp = issuer(tmp_path, roles_claim="realm_access.roles")
    token = idp.mint("e-1", [Role.PROGRAMME_OWNER])
    assert jwt.decode(token, options={"verify_signature": False})["realm_access"] == {"roles": ["programme_owner"]}
    principal = await verifier(CountingKeys(idp), "realm_access.roles").authenticate(bearer(token))
    assert principal.roles == {Role.PROGRAMME_OWNER}


def test_a_missing_role_names_the_role_needed() -> None:
    with pytest.raises(PermissionDenied, match="needs the works_council role; your token has employee"):
        Principal("e-1", frozenset({Role.EMPLOYEE})).require(Role.WORKS_COUNCIL)


def test_production_needs_an_https_identity_provider() -> None:
    with pytest.raises(ValueError, match="identity provider"):
        CommonSettings(env="production")
    assert CommonSettings(env="production", oidc_issuer=ISSUER).oidc_issuer == ISSUER


def test_the_key_is_created_once_and_kept_private(tmp_path: Path) -> None:
    idp = issuer(tmp_path)
    idp.ensure_key()
    idp.ensure_key()
    (path,) = (tmp_path / "ES256").glob("*.pem")
    assert path.stat().st_mode & 0o777 == 0o600
    assert [k["kid"] for k in idp.jwks()["keys"]] == [path.stem]
    assert "d" not in idp.jwks()["keys"][0], "the JWKS holds public keys only"
