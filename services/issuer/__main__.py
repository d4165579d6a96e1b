"""`python -m services.issuer`: the local OIDC issuer (development, tests, the demo) until SIGTERM.
`python -m services.issuer rotate` adds a signing key (the old ones stay published)."""

from __future__ import annotations

import signal
import sys
import threading

from services.common.local_issuer import MintingRefused, local_issuer
from services.common.logging import configure_logging
from services.common.settings import load
from services.issuer.config import IssuerSettings
from services.issuer.server import serve


def main(argv: list[str]) -> None:
    settings = load(IssuerSettings)
    log = configure_logging("issuer", settings.log_level)
    try:
        issuer = local_issuer(settings)
    except MintingRefused as exc:
        raise SystemExit(f"the local issuer does not run in production: {exc}") from None
    if argv == ["rotate"]:
        print(issuer.rotate())
        return
    issuer.ensure_key()
    server = serve(issuer, settings.issuer_host, settings.issuer_port, login_settings=settings)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    log.info("local issuer serving", extra={"issuer": issuer.issuer, "port": settings.issuer_port})
    stop.wait()
    server.shutdown()
    log.info("stopped")


if __name__ == "__main__":
    main(sys.argv[1:])
