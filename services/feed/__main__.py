"""`python -m services.feed`: runs the feed gRPC service with its outbox relay until SIGTERM."""

from __future__ import annotations

import asyncio

from services.common.logging import configure_logging
from services.common.settings import load
from services.feed.config import FeedSettings
from services.feed.server import main

if __name__ == "__main__":
    settings = load(FeedSettings)
    configure_logging("feed", settings.log_level)
    asyncio.run(main(settings))
