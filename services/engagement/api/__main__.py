"""`python -m services.engagement.api`: serves the EngagementService until SIGTERM/SIGINT."""

from __future__ import annotations

import asyncio

from services.common.logging import configure_logging
from services.common.settings import load
from services.engagement.api.server import serve
from services.engagement.api.settings import EngagementApiSettings

if __name__ == "__main__":
    settings = load(EngagementApiSettings)
    configure_logging("engagement-api", settings.log_level)
    asyncio.run(serve(settings))
