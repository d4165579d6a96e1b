"""`python -m services.console`: the web console on CATALYST_CONSOLE_PORT (default 8080) until SIGTERM."""

from __future__ import annotations

import uvicorn

from services.common.logging import configure_logging
from services.common.settings import load
from services.console.adapters.grpc_backend import GrpcBackend
from services.console.adapters.oidc import OidcSignIn
from services.console.app import create_app
from services.console.config import ConsoleSettings


def main() -> None:
    settings = load(ConsoleSettings)
    log = configure_logging("console", settings.log_level)
    backend = GrpcBackend(settings)
    app = create_app(settings, backend, OidcSignIn(settings), on_shutdown=backend.close)
    log.info("console serving", extra={"port": settings.console_port, "issuer": settings.oidc_issuer})
    uvicorn.run(
        app,
        host=settings.console_host,
        port=settings.console_port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=int(settings.shutdown_grace_seconds),
    )


if __name__ == "__main__":
    main()
