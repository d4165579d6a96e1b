"""The local issuer's own server (discovery, JWKS, /authorize, /token) on a free port with fresh keys, for
tests of the real OIDC flow."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from prometheus_client import CollectorRegistry

from services.common.local_issuer import LocalIssuer
from services.common.local_issuer_login import InteractiveLogin
from services.issuer.server import serve
from tests.conftest import free_port


@dataclass
class RunningIssuer:
    issuer: LocalIssuer
    login: InteractiveLogin  # a second instance of the endpoints, for calls without HTTP

    @property
    def url(self) -> str:
        return self.issuer.issuer


@contextmanager
def running_issuer() -> Iterator[RunningIssuer]:
    port = free_port()
    issuer = LocalIssuer(
        Path(tempfile.mkdtemp(prefix="catalyst-console-issuer-")), f"http://127.0.0.1:{port}", "catalyst"
    )
    issuer.ensure_key()
    server = serve(issuer, "127.0.0.1", port, CollectorRegistry())
    try:
        yield RunningIssuer(issuer, InteractiveLogin(issuer))
    finally:
        server.shutdown()
        server.server_close()
