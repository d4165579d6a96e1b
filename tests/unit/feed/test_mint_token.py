"""The token-minting command signs with the configured secret and the requested roles."""

from __future__ import annotations

import pytest

from services.common.auth import Role, TokenAuthority
from services.common.mint_token import main

SECRET = "unit-test-secret-for-minting-0123456789"


def test_mints_a_verifiable_token(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("CATALYST_JWT_SECRET", SECRET)
    token = main(["--subject", "e-1", "--role", "hr", "--role", "employee", "--ttl", "60"])
    assert capsys.readouterr().out.strip() == token
    principal = TokenAuthority(SECRET).verify(token)
    assert principal.subject == "e-1" and principal.roles == {Role.HR, Role.EMPLOYEE}


def test_defaults_to_the_employee_role(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CATALYST_JWT_SECRET", SECRET)
    assert TokenAuthority(SECRET).verify(main(["--subject", "e-2"])).roles == {Role.EMPLOYEE}


@pytest.mark.parametrize(
    "args", [["--subject", " "], ["--subject", "e", "--ttl", "0"], ["--subject", "e", "--role", "god"]]
)
def test_bad_arguments_exit_with_usage(args: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CATALYST_JWT_SECRET", SECRET)
    with pytest.raises(SystemExit) as exc:
        main(args)
    assert exc.value.code == 2
