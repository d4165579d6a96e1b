"""Keyed pseudonyms and the Redis keys of erasure markers.

An erased person must leave no key or value with their id behind, yet every consumer must still recognise
them when a late or replayed event arrives. So a marker is keyed by an HMAC of the id with a secret from the
settings (`CommonSettings.pseudonym_key`): without the key, the marker cannot be tied to anyone, and hashing
a list of known ids does not re-identify it (an unkeyed hash would).
"""

from __future__ import annotations

import binascii
import hashlib
import hmac
from functools import cache, lru_cache

CLUSTER_SLOTS = 16_384


def pseudonym(key: str, employee_id: str) -> str:
    """HMAC-SHA256 of the id, 128 bits in hex: stable for one key, meaningless without it."""
    return hmac.new(key.encode(), employee_id.encode(), hashlib.sha256).hexdigest()[:32]


def cluster_slot(hash_tag: str) -> int:
    """The Redis Cluster slot of a key whose hash tag is `hash_tag` (CRC16/XMODEM, as Redis computes it)."""
    return binascii.crc_hqx(hash_tag.encode(), 0) % CLUSTER_SLOTS


@cache
def _slot_tags() -> tuple[str, ...]:
    """One short tag per slot ("s0", "s1", ... whichever lands there first); computed once per process."""
    tags: list[str | None] = [None] * CLUSTER_SLOTS
    missing, n = CLUSTER_SLOTS, 0
    while missing:
        tag = f"s{n}"
        slot = cluster_slot(tag)
        if tags[slot] is None:
            tags[slot] = tag
            missing -= 1
        n += 1
    return tuple(t for t in tags if t is not None)


def slot_tag(hash_tag: str) -> str:
    """A tag in the same slot as `hash_tag` that does not contain it, so a key without the person's id can
    still take part in a script over the person's keys (`{emp:<id>}`). It reveals the slot, 14 bits of an
    unkeyed hash, which tells nothing about who it is among thousands."""
    return _slot_tags()[cluster_slot(hash_tag)]


@lru_cache(maxsize=1 << 18)
def marker_key(prefix: str, key: str, employee_id: str) -> str:
    """`<prefix>:{<slot tag>}:<pseudonym>`: the erasure marker of one person, in the slot of `{emp:<id>}`.
    Cached: the engagement worker names the markers of everyone in every batch it writes."""
    return f"{prefix}:{{{slot_tag(f'emp:{employee_id}')}}}:{pseudonym(key, employee_id)}"
