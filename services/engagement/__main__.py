"""`python -m services.engagement`: runs the engagement worker until SIGTERM/SIGINT (graceful shutdown)."""

from __future__ import annotations

import faust
from prometheus_client import CollectorRegistry

from services.common import cpus
from services.common.grpc_server import serve_metrics
from services.common.logging import configure_logging
from services.common.settings import load
from services.engagement.config import EngagementWorkerSettings, load_scoring
from services.engagement.gc_policy import collect_rarely
from services.engagement.stream import Worker


def main() -> None:
    settings = load(EngagementWorkerSettings)
    if settings.consumer_cpus:  # before any thread starts: threads inherit it
        cpus.pin(settings.consumer_cpus)
    log = configure_logging("engagement-worker", settings.log_level)
    cfg = load_scoring(settings.scoring_file)
    settings.worker_data_dir.mkdir(parents=True, exist_ok=True)
    registry = CollectorRegistry()
    collect_rarely()
    worker = Worker(settings, cfg, registry)
    serve_metrics(settings.metrics_host, settings.worker_metrics_port, registry)
    log.info(
        "starting engagement worker",
        extra={
            "group": settings.engagement_group_id,
            "topic": settings.topic_interactions,
            "web_port": settings.worker_web_port,
            "metrics_port": settings.worker_metrics_port,
        },
    )
    faust.Worker(
        worker.app,
        loglevel=settings.log_level,
        override_logging=False,
        redirect_stdouts=False,
        workdir=str(settings.worker_data_dir),
    ).execute_from_commandline()


if __name__ == "__main__":
    main()
