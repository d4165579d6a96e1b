"""The C planner (`_plan.c`) against the plain-Python statement of the rules (`scoring.effects`) and the Python
protobuf runtime: the same ops, activity and forgets event by event, and no record the runtime rejects is scored."""

from __future__ import annotations

import random

import pytest
from catalyst.events.v1 import envelope_pb2
from google.protobuf.message import DecodeError

from services.engagement import scoring
from services.engagement.batch import Plan, Record, plan
from services.engagement.scoring import DIRECTORY_FACTS, effects, occurred_ms
from tests.unit.engagement.builders import DAY, event, mixed_history, react

T0 = 20_000 * DAY
NOW_MS = (T0 + DAY) * 1000
SKEW = 3_600_000


def expected(envs: list[envelope_pb2.Envelope], partitions: int) -> Plan:
    """What the planner must produce, derived with `effects` record by record."""
    out = Plan()
    forgotten: set[str] = set()
    for offset, env in enumerate(envs):
        partition = offset % partitions
        if env.WhichOneof("payload") not in DIRECTORY_FACTS:
            out.newest_ms = max(out.newest_ms, occurred_ms(env))
        eff = effects(env)
        if eff.forget is not None:
            if eff.forget not in forgotten:
                forgotten.add(eff.forget)
                out.forget.append(eff.forget)
            out.ops.pop(eff.forget, None)
            continue
        for employee, op in eff.ops:
            if employee not in forgotten:
                out.ops.setdefault(employee, {}).setdefault(partition, []).append((offset, op))
        if eff.dept_activity is not None:
            department, day, who = eff.dept_activity
            out.activity.setdefault((department, day), set()).add(who)
    return out


def planned(envs: list[envelope_pb2.Envelope], partitions: int) -> Plan:
    records = [Record(i % partitions, i, None, env.SerializeToString(), 0) for i, env in enumerate(envs)]
    return plan(records, NOW_MS, SKEW)


def assert_same(envs: list[envelope_pb2.Envelope], partitions: int = 3) -> None:
    got, want = planned(envs, partitions), expected(envs, partitions)
    assert not got.dead
    assert got.ops == want.ops
    assert all(type(op) is scoring.Op for by_p in got.ops.values() for ops in by_p.values() for _, op in ops)
    assert (got.activity, got.forget, got.newest_ms) == (want.activity, want.forget, want.newest_ms)


def test_every_kind_of_event_maps_to_the_ops_effects_gives() -> None:
    envs = list(mixed_history(60, 30, 200, T0 - 20 * DAY))
    envs.append(event("EmployeeForgotten", "e0003", T0 - 5))
    envs.append(react("e0003", "e0004", T0 - 4))  # after the forget: nothing for e0003
    envs.append(event("EmployeeForgotten", "e0003", T0 - 3))
    assert_same(envs)


def test_edge_values_map_as_effects_maps_them() -> None:
    envs = [
        react("a", "a", T0 - 9),  # self-interaction: nothing, not even activity
        react("a", "b", T0 - 9, "", "d2"),  # no own department: no activity, never "other"
        react("a", "b", T0 - 9, "d1", ""),
        react("a", "b\x00c", T0 - 9),  # an embedded NUL is part of the id
        react("a", "b", T0 - 9, "dé", "dè"),
        react("ä" * 128, "b", T0 - 9),  # 128 characters, 256 bytes
        event("AnswerPosted", "a", T0 - 8, "d1", question_author_id="q", question_author_department_id="d1"),
        event("AnswerPosted", "a", T0 - 8, "d1", question_author_id="q", question_author_department_id="d2"),
        event("AnswerPosted", "a", T0 - 8, "d1", question_author_id="a"),
        event("AnswerAccepted", "a", T0 - 7, "d1", answer_author_id="x", answer_author_department_id="d1"),
        event("AnswerAccepted", "a", T0 - 7, "", answer_author_id="x"),
        event("ProfileUpdated", "a", T0 - 6, completeness=0.1 + 0.2),
        event("ProfileUpdated", "a", T0 - 6, completeness=1.0),
        event("EmployeeRegistered", "a", T0 - 5, "dept ñ", display_name="Ana Ñ"),
        event("EmployeeRegistered", "b", T0 - 5, ""),
        event("PostEdited", "a", T0 - 4, post_id="p"),
    ]
    negative = react("a", "b", T0 - 9)
    negative.occurred_at.nanos = -1  # floor division, as Python's
    envs.append(negative)
    assert_same(envs)


def test_a_pseudonym_cache_cleared_mid_batch_changes_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    envs = [react(f"g{i}", f"r{i % 7}", T0 - i) for i in range(200)]
    want = expected(envs, 2)
    monkeypatch.setattr(scoring, "PSEUDONYM_CACHE", 5)
    scoring.PSEUDONYMS.clear()
    assert planned(envs, 2).ops == want.ops


def test_keys_are_compared_as_python_compares_them() -> None:
    env = react("a\ufffd", "b", T0 - 9).SerializeToString()
    work = plan([Record(0, 0, b"a\xff", env, 0), Record(0, 1, b"a", env, 0)], NOW_MS, SKEW)
    assert [offset for (_, offset, *_), _ in work.dead] == [1]


def test_times_out_of_range_are_poison() -> None:
    far = react("a", "b", T0)
    far.occurred_at.seconds = 2**62
    work = plan([Record(0, 0, None, far.SerializeToString(), 0)], NOW_MS, SKEW)
    assert work.dead[0][1] == "occurred_at is in the future"


def test_invalid_utf8_anywhere_in_the_message_is_undecodable() -> None:
    valid = react("a", "b", T0 - 9).SerializeToString()
    for good, bad in ((b"\n\x01p", b"\n\x01\xff"), (b"d1", b"\xc3\x28")):  # post_id, department
        assert good in valid
        work = plan([Record(0, 0, None, valid.replace(good, bad, 1), 0)], NOW_MS, SKEW)
        assert work.dead[0][1] == "undecodable Envelope: a string field is not valid UTF-8"


def test_no_record_the_protobuf_runtime_rejects_is_scored() -> None:
    """Random corruptions of valid records: whatever Python's runtime cannot parse is a dead letter here too,
    and what both accept is planned as `effects` plans it."""
    rng = random.Random(7)
    sources = [env.SerializeToString() for env in mixed_history(20, 10, 60, T0 - 10 * DAY)]
    checked = 0
    for _ in range(3000):
        value = bytearray(rng.choice(sources))
        for _ in range(rng.randint(1, 3)):
            value[rng.randrange(len(value))] = rng.randrange(256)
        work = plan([Record(0, 0, None, bytes(value), 0)], NOW_MS, SKEW)
        try:
            env = envelope_pb2.Envelope.FromString(bytes(value))
        except DecodeError:
            assert work.dead and work.dead[0][1].startswith("undecodable"), value
            continue
        if not work.dead:
            checked += 1
            assert work.ops == expected([env], 1).ops
    assert checked > 100


def test_a_record_larger_than_the_arena_block_is_decoded_whole() -> None:
    name = "N" * 300_000 + "é"  # the arena grows past its 64 KB block for this record, then shrinks back
    envs = [event("EmployeeRegistered", "a", T0 - 5, "d1", display_name=name), react("a", "b", T0 - 4)]
    assert_same(envs)
    assert planned(envs, 1).ops["a"][0][0][1].z == name
