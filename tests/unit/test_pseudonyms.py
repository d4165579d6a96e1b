"""Erasure markers: keyed, free of the raw id, and in the person's Redis Cluster slot."""

from __future__ import annotations

from services.common.pseudonyms import cluster_slot, marker_key, pseudonym


def test_a_pseudonym_needs_the_key() -> None:
    key = "k" * 32
    assert pseudonym(key, "alice") == pseudonym(key, "alice")
    assert pseudonym(key, "alice") != pseudonym("x" * 32, "alice")
    assert pseudonym(key, "alice") != pseudonym(key, "bob")


def test_redis_slots_are_computed_as_redis_does() -> None:
    assert cluster_slot("foo") == 12182  # CLUSTER KEYSLOT foo


def test_a_marker_key_shares_the_persons_slot_without_their_id() -> None:
    for employee in ("alice", "emp-00042", "x" * 128):
        key = marker_key("recognition:gone", "k" * 32, employee)
        assert employee not in key
        tag = key[key.index("{") + 1 : key.index("}")]
        assert cluster_slot(tag) == cluster_slot(f"emp:{employee}")
