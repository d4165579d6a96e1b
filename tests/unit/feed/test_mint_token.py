"""The token-minting command signs with the local issuer's key and the requested roles, and refuses in
production, where tokens come from the company's identity provider."""

from __future__ import annotations

import pytest

from services.cli.main import main as catalyst
from services.common.auth import Role
from services.common.mint_token import main
from tests.conftest import verify


def test_mints_a_verifiable_token(capsys: pytest.CaptureFixture[str]) -> None:
    token = main(["--subject", "e-1", "--role", "hr", "--role", "employee", "--ttl", "60"])
    assert capsys.readouterr().out.strip() == token
    principal = verify(token)
    assert principal.subject == "e-1" and principal.roles == {Role.HR, Role.EMPLOYEE}


def test_defaults_to_the_employee_role() -> None:
    assert verify(main(["--subject", "e-2"])).roles == {Role.EMPLOYEE}


@pytest.mark.parametrize(
    "args", [["--subject", " "], ["--subject", "e", "--ttl", "0"], ["--subject", "e", "--role", "god"]]
)
def test_bad_arguments_exit_with_usage(args: list[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(args)
    assert exc.value.code == 2


def test_production_refuses_to_mint(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("CATALYST_ENV", "production")
    monkeypatch.setenv("CATALYST_OIDC_ISSUER", "https://login.example.com/realms/company")
    for command in (lambda: main(["--subject", "e-1"]), lambda: catalyst(["token", "e-1"])):
        with pytest.raises(SystemExit) as exc:
            command()
        assert "production" in str(exc.value.code) and "identity provider" in str(exc.value.code)
    assert not capsys.readouterr().out
