"""The command line without services: minting and the message when a service is down."""

from __future__ import annotations

import pytest

from services.cli.main import main
from services.common.auth import Role, TokenAuthority
from services.common.settings import CommonSettings
from tests.conftest import free_port


def test_token_command_mints_a_token_the_services_accept(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["token", "emp-7", "--token-role", "admin"]) == 0
    token = capsys.readouterr().out.strip()
    principal = TokenAuthority(CommonSettings().jwt_secret).verify(token)
    assert principal.subject == "emp-7" and principal.has(Role.ADMIN)


def test_a_service_that_is_down_gets_a_clear_message(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    port = free_port()
    monkeypatch.setenv("CATALYST_RECOGNITION_TARGET", f"127.0.0.1:{port}")
    assert main(["coverage"]) == 2
    err = capsys.readouterr().err
    assert f"the recognition service is not reachable at 127.0.0.1:{port}" in err
    assert "make up" in err
