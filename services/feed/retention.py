"""Retention of the feed's texts: what passed the policy's limit is removed and counted."""

from __future__ import annotations

import logging

from prometheus_client import REGISTRY, CollectorRegistry, Counter

from services.common.policy import FeedRetention
from services.feed.handlers import FeedHandlers

log = logging.getLogger(__name__)


class RetentionSweep:
    """One run removes every post (with its thread) and feedback text older than its limit."""

    def __init__(self, handlers: FeedHandlers, limits: FeedRetention, registry: CollectorRegistry = REGISTRY) -> None:
        self._handlers = handlers
        self._limits = limits
        self.removed = Counter(
            "feed_retention_removed",
            "Records removed because they passed the policy's retention, by kind (posts, comments, feedback)",
            ["kind"],
            registry=registry,
        )

    async def run(self) -> None:
        posts, comments = await self._handlers.expire_posts(_ms(self._limits.posts.total_seconds()))
        feedback = await self._handlers.expire_feedback(_ms(self._limits.feedback.total_seconds()))
        for kind, count in (("posts", posts), ("comments", comments), ("feedback", feedback)):
            self.removed.labels(kind).inc(count)
        if posts or comments or feedback:
            log.info("retention removed %d posts, %d comments and %d feedback texts", posts, comments, feedback)


def _ms(seconds: float) -> int:
    return int(seconds * 1000)
