"""The audit's rules with an in-memory log: when a purpose is needed, what an entry says, what is counted."""

from __future__ import annotations

import pytest
from catalyst.events.v1 import envelope_pb2

from services.common.audit import PURPOSE_KEY, Auditor, access_record, stated_purpose
from services.common.auth import Principal, Role
from services.common.errors import InvalidArgument
from services.recognition.audit import page_offset, page_size, summarise

OWNER = Principal("po-1", frozenset({Role.PROGRAMME_OWNER, Role.EMPLOYEE}))
METHOD = "catalyst.engagement.v1.EngagementService/ExplainScore"


class MemoryLog:
    def __init__(self) -> None:
        self.entries: list[envelope_pb2.Envelope] = []

    async def append(self, entries: list[envelope_pb2.Envelope]) -> None:
        self.entries.extend(entries)


def auditor(log: MemoryLog) -> Auditor:
    ids = iter(range(1000))
    return Auditor(log, "engagement-api", clock_ms=lambda: 1_700_000_000_000, new_id=lambda: f"a-{next(ids)}")


def test_own_data_needs_no_purpose_and_someone_elses_does() -> None:
    assert Auditor.purpose(OWNER, ["po-1"], ()) == ""
    with pytest.raises(InvalidArgument) as refused:
        Auditor.purpose(OWNER, ["po-1", "amy"], (("authorization", "Bearer x"),))
    assert refused.value.field == PURPOSE_KEY and PURPOSE_KEY in str(refused.value)
    assert Auditor.purpose(OWNER, ["amy"], ((PURPOSE_KEY, b" coaching talk "),)) == "coaching talk"
    for blank in ("", "   "):
        with pytest.raises(InvalidArgument):
            stated_purpose(((PURPOSE_KEY, blank),))
    with pytest.raises(InvalidArgument, match="at most 200"):
        stated_purpose(((PURPOSE_KEY, "x" * 201),))


async def test_each_other_person_looked_at_gets_one_entry() -> None:
    log = MemoryLog()
    assert await auditor(log).record(OWNER, ["amy", "po-1", "ben", "amy", ""], METHOD, "invitations") == 2
    assert [e.employee_id for e in log.entries] == ["amy", "ben"]
    first = log.entries[0]
    assert (first.event_id, first.producer, first.type) == ("a-0", "engagement-api", "catalyst.events.v1.DataAccessed")
    assert first.occurred_at.ToMilliseconds() == 1_700_000_000_000
    assert first.data_accessed.actor == "po-1"
    assert list(first.data_accessed.actor_roles) == ["employee", "programme_owner"]
    assert (first.data_accessed.method, first.data_accessed.purpose) == (METHOD, "invitations")


async def test_looking_at_oneself_appends_nothing() -> None:
    log = MemoryLog()
    assert await auditor(log).record(OWNER, ["po-1"], METHOD, "") == 0
    assert log.entries == []


def test_the_summary_counts_look_ups_people_and_actors_per_kind() -> None:
    hr = Principal("hr-1", frozenset({Role.HR}))
    entries = [
        access_record(OWNER, "amy", METHOD, "invitations", "p", 1, "1"),
        access_record(OWNER, "ben", METHOD, "invitations", "p", 2, "2"),
        access_record(OWNER, "amy", METHOD, "invitations", "p", 3, "3"),
        access_record(hr, "amy", METHOD, "leaver", "p", 4, "4"),
    ]
    counts = [(c.actor_role, c.purpose, c.accesses, c.people, c.actors) for c in summarise(entries)]
    assert counts == [("employee,programme_owner", "invitations", 3, 2, 1), ("hr", "leaver", 1, 1, 1)]


def test_pages_are_bounded_and_tokens_checked() -> None:
    assert (page_size(0), page_size(10), page_size(10_000)) == (50, 10, 500)
    assert (page_offset(""), page_offset("40")) == (0, 40)
    for bad in ("-1", "abc", "9" * 12):
        with pytest.raises(InvalidArgument):
            page_offset(bad)
    with pytest.raises(InvalidArgument):
        page_size(-1)
