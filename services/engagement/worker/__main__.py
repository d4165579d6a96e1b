"""`python -m services.engagement.worker`: runs the engagement worker until SIGTERM/SIGINT (graceful shutdown)."""

from __future__ import annotations

import gc

import faust
from prometheus_client import CollectorRegistry

from services.common.grpc_server import serve_metrics
from services.common.logging import configure_logging
from services.common.settings import load
from services.engagement.model.config import load_model
from services.engagement.worker.app import Worker
from services.engagement.worker.settings import EngagementWorkerSettings

# A batch allocates hundreds of thousands of small tuples that live until it is written; with the default
# thresholds the collector would scan them over and over. Nothing the worker builds forms reference cycles
# worth collecting sooner.
GC_THRESHOLDS = (100_000, 50, 100)


def main() -> None:
    gc.set_threshold(*GC_THRESHOLDS)
    settings = load(EngagementWorkerSettings)
    log = configure_logging("engagement-worker", settings.log_level)
    model = load_model(settings.scoring_file)
    settings.worker_data_dir.mkdir(parents=True, exist_ok=True)
    registry = CollectorRegistry()
    worker = Worker(settings, model, registry)
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
