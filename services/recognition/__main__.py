"""`python -m services.recognition`: consumer, outbox relay and gRPC server in one process."""

from __future__ import annotations

import asyncio

from services.common.grpc_server import run_until_signalled, serve_metrics
from services.common.logging import configure_logging
from services.common.settings import load
from services.recognition.app import RecognitionApp
from services.recognition.config import RecognitionSettings
from services.recognition.rules import RulesError


async def main() -> None:
    settings = load(RecognitionSettings)
    configure_logging("recognition", settings.log_level)
    try:
        app = RecognitionApp(settings)
    except RulesError as exc:
        raise SystemExit(str(exc)) from None
    serve_metrics(settings.metrics_host, settings.metrics_port)
    await run_until_signalled([app.start], [app.stop])


if __name__ == "__main__":
    asyncio.run(main())
