"""`python -m services.demo.seed` (`make seed`): loads the sample company into a running Catalyst and prints the
employee id of its first Intranet Ambassador, so the README's examples start from a state they create.

Everything goes through the public APIs, as the simulator drives the demo: the directory and twelve weeks of
history through the feed (IngestInteractions keeps each interaction's event time), then the wait for a fact,
not for a while: the first Intranet Ambassador badge event on catalyst.recognition.v1, as StreamBadgeEvents
delivers it. A system that already lists an ambassador is left as it is. Progress goes to stderr, the id
alone to stdout (`AMBASSADOR=$(make seed)`).
"""

from __future__ import annotations

import asyncio
import sys

import grpc
from catalyst.recognition.v1 import recognition_pb2, recognition_pb2_grpc

from services.common.audit import PURPOSE_KEY
from services.common.auth import Role
from services.common.grpc_client import bearer, channel
from services.common.local_issuer import local_issuer
from services.common.settings import load
from services.demo.config import DemoSettings
from services.demo.evaluation import AMBASSADOR
from services.simulator.driver import SimulatorError, run_simulation
from services.simulator.scenario import preset

SCENARIO = "sample"


def say(message: str) -> None:
    print(f"[seed] {message}", file=sys.stderr, flush=True)


async def first_ambassador_event(stream: grpc.aio.UnaryStreamCall) -> str:
    """The employee id of the first Intranet Ambassador grant the badge event stream delivers."""
    async for response in stream:
        event = response.event
        if event.WhichOneof("payload") == "badge_granted" and event.badge_granted.badge == AMBASSADOR:
            return event.employee_id
    raise SimulatorError("the recognition service closed the badge event stream")


async def seed(settings: DemoSettings) -> str:
    """Loads the sample company unless an ambassador exists already; returns the first ambassador's id."""
    authority = local_issuer(settings)
    token = bearer(authority.mint("sample-seed", [Role.PROGRAMME_OWNER], 3600))
    owner = (*token, (PURPOSE_KEY, "sample data: name the first Intranet Ambassador"))
    async with channel(settings.recognition_target) as ch:
        stub = recognition_pb2_grpc.RecognitionServiceStub(ch)
        # Subscribed before anything is sent, so the grant cannot pass unseen.
        stream = stub.StreamBadgeEvents(recognition_pb2.StreamBadgeEventsRequest(), metadata=owner)
        try:
            listed = await stub.ListAmbassadors(recognition_pb2.ListAmbassadorsRequest(), metadata=owner)
            if listed.ambassadors:
                say("Catalyst lists an Intranet Ambassador already; nothing to load")
                return listed.ambassadors[0].employee_id
            scenario = preset(SCENARIO)
            say(f"loading the sample company ({scenario.employees} people, {scenario.live_days} days) into the feed")
            result = await run_simulation(scenario, settings.feed_target, authority)
            say(
                f"{result.employees_registered} people and {result.actions:,} interactions sent in "
                f"{result.elapsed_seconds:.0f} s; waiting for engagement and recognition to find an ambassador"
            )
            async with asyncio.timeout(settings.demo_seed_timeout_seconds):
                employee = await first_ambassador_event(stream)
        finally:
            stream.cancel()
    say(f"{employee} is an Intranet Ambassador (`catalyst ambassadors` lists everyone)")
    return employee


def main() -> int:
    settings = load(DemoSettings)
    try:
        print(asyncio.run(seed(settings)))
    except SimulatorError as exc:
        say(f"failed: {exc}")
        return 1
    except grpc.aio.AioRpcError as exc:
        say(f"a service refused the seed: {exc.code().name}: {exc.details()} (is the system up? `make status`)")
        return 1
    except TimeoutError:
        say(
            f"no Intranet Ambassador within {settings.demo_seed_timeout_seconds:.0f} s: are the engagement "
            "worker and recognition running? `make status`, `make logs`"
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
