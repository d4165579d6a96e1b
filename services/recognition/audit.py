"""The audit log's rules, without I/O: what a works council summary counts, and how pages are asked for."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from catalyst.events.v1 import envelope_pb2

from services.common.errors import InvalidArgument

PAGE_DEFAULT = 50
PAGE_MAX = 500


@dataclass(frozen=True)
class AccessCount:
    """Look-ups of one kind: by callers holding `actor_role`, through `method`, for `purpose`."""

    actor_role: str
    method: str
    purpose: str
    accesses: int
    people: int
    actors: int


def summarise(entries: Iterable[envelope_pb2.Envelope]) -> list[AccessCount]:
    """Counts per (roles of the caller, method, purpose), most frequent first; a caller with several roles is
    counted once, under all of them ("hr,programme_owner"), so totals add up."""
    groups: dict[tuple[str, str, str], list[envelope_pb2.Envelope]] = defaultdict(list)
    for env in entries:
        access = env.data_accessed
        role = ",".join(access.actor_roles) or "no role"
        groups[(role, access.method, access.purpose)].append(env)
    counts = [
        AccessCount(
            role,
            method,
            purpose,
            accesses=len(found),
            people=len({e.employee_id for e in found}),
            actors=len({e.data_accessed.actor for e in found}),
        )
        for (role, method, purpose), found in groups.items()
    ]
    return sorted(counts, key=lambda c: (-c.accesses, c.actor_role, c.method, c.purpose))


def page_size(requested: int) -> int:
    if requested < 0:
        raise InvalidArgument("page_size", "must not be negative")
    return min(requested or PAGE_DEFAULT, PAGE_MAX)


def page_offset(token: str) -> int:
    """Page tokens are the position of the next entry, newest first."""
    if not token:
        return 0
    if not token.isdigit() or len(token) > 9:
        raise InvalidArgument("page_token", "is not a token this service gave out; start again without one")
    return int(token)
