"""Hypothesis strategies for the fuzz suite: valid, boundary and corrupted requests of any RPC.

Requests are built from the message descriptors, so a field added to a contract is fuzzed without a change
here. A string field draws from the values the running system knows under that field name (`Pools`: real
employees, posts, badges...), from boundary values, or from arbitrary text; numbers from their type's
boundaries and the limits the services enforce; timestamps from valid, edge and impossible times. `corrupted`
turns a request into bytes no client library would send: invalid UTF-8 in a (nested) string field,
truncation, flipped or inserted bytes, a length running past the end, or random bytes.
"""

from __future__ import annotations

import enum
import math
import string
import time
from collections.abc import Mapping, Sequence

from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass
from hypothesis import strategies as st

Pools = Mapping[str, Sequence[str]]  # field name -> values the running system knows

FD = FieldDescriptor
_INT_RANGES = {
    FD.TYPE_INT32: (-(2**31), 2**31 - 1),
    FD.TYPE_SINT32: (-(2**31), 2**31 - 1),
    FD.TYPE_SFIXED32: (-(2**31), 2**31 - 1),
    FD.TYPE_INT64: (-(2**63), 2**63 - 1),
    FD.TYPE_SINT64: (-(2**63), 2**63 - 1),
    FD.TYPE_SFIXED64: (-(2**63), 2**63 - 1),
    FD.TYPE_UINT32: (0, 2**32 - 1),
    FD.TYPE_FIXED32: (0, 2**32 - 1),
    FD.TYPE_UINT64: (0, 2**64 - 1),
    FD.TYPE_FIXED64: (0, 2**64 - 1),
}
# Limits the services enforce (page sizes, batch sizes, survey questions, text lengths) and their neighbours.
_INT_EDGES = (0, 1, -1, 5, 20, 100, 101, 500, 501, 1000, 1001, 2**31 - 1, -(2**31), 2**32 - 1, 2**63 - 1, -(2**63))
_STRING_EDGES = (
    "",
    " ",
    "x" * 64,
    "x" * 65,
    "x" * 128,
    "x" * 129,
    "x" * 201,
    "y" * 10_001,
    "two words",
    "Ä€😀",
    "a\x00b",
    "a\x01b",
    "line\nbreak",
    "\u202etxet",
    "#tag",
    "{emp:x}:employee",
    "*",
    "p0000000000000deadbeef",
    "c1650000000000deadbeef",
    "https://example.invalid/photo.png",
    "+49 30 1234",
)
_FLOAT_EDGES = (0.0, 0.5, 1.0, 1.0000001, -0.1, -0.0, math.nan, math.inf, -math.inf)
_NOW = int(time.time())
_SECONDS = (0, 1, -1, 1_650_000_000, _NOW, _NOW + 3600, 253_402_300_799, 253_402_300_800, -62_135_596_801, 2**63 - 1)
_NANOS = (0, 1, 1_000_000, 999_999_999, 1_000_000_000, -1, 2**31 - 1, -(2**31))
_REPEATED_EDGES = (2, 11, 31, 501)  # repeats, and one past the tags, skills and ingest batch limits
_MAX_DEPTH = 4


class Kind(enum.Enum):
    """What a drawn value is: what a client would send, a boundary, or anything its type can hold."""

    PLAUSIBLE = "plausible"
    EDGE = "edge"
    ANY = "any"


def _integers(field: FieldDescriptor, kind: Kind) -> st.SearchStrategy[int]:
    low, high = _INT_RANGES[field.type]
    if kind is Kind.PLAUSIBLE:
        return st.integers(max(low, 0), 20)
    if kind is Kind.EDGE:
        return st.sampled_from([n for n in _INT_EDGES if low <= n <= high])
    return st.integers(low, high)


def _strings(field: FieldDescriptor, pools: Pools, kind: Kind) -> st.SearchStrategy[str]:
    if kind is Kind.EDGE:
        return st.sampled_from(_STRING_EDGES)
    if kind is Kind.ANY:
        return st.text(max_size=30)
    known = pools.get(field.name, ())
    return st.sampled_from(list(known)) if known else st.text(string.ascii_lowercase + "-", min_size=1, max_size=12)


def _enums(field: FieldDescriptor, kind: Kind) -> st.SearchStrategy[int]:
    numbers = [v.number for v in field.enum_type.values]
    if kind is Kind.PLAUSIBLE:
        return st.sampled_from([n for n in numbers if n] or numbers)
    if kind is Kind.EDGE:
        return st.sampled_from([0, -1, max(numbers) + 1, 99, 2**31 - 1])
    return st.integers(-(2**31), 2**31 - 1)


def _floats(field: FieldDescriptor, kind: Kind) -> st.SearchStrategy[float]:
    if kind is Kind.PLAUSIBLE:
        return st.floats(0.0, 1.0)
    if kind is Kind.EDGE:
        return st.sampled_from(_FLOAT_EDGES)
    return st.floats(width=64 if field.type == FD.TYPE_DOUBLE else 32)


def _values(field: FieldDescriptor, pools: Pools, kind: Kind, depth: int) -> st.SearchStrategy[object]:
    if field.type == FD.TYPE_STRING:
        return _strings(field, pools, kind)
    if field.type == FD.TYPE_BYTES:
        return st.binary(max_size=32)
    if field.type == FD.TYPE_BOOL:
        return st.booleans()
    if field.type == FD.TYPE_ENUM:
        return _enums(field, kind)
    if field.type in (FD.TYPE_DOUBLE, FD.TYPE_FLOAT):
        return _floats(field, kind)
    if field.type == FD.TYPE_MESSAGE:
        return messages(field.message_type, pools, depth + 1, wild=kind is Kind.ANY)
    return _integers(field, kind)


@st.composite
def timestamps(draw: st.DrawFn, descriptor: Descriptor, wild: bool) -> Message:
    """Plausible times (since 2017), or the edges of the Timestamp range and impossible ones."""
    at = GetMessageClass(descriptor)()
    edge = wild or draw(st.integers(0, 3)) == 0
    at.seconds = draw(st.sampled_from(_SECONDS) if edge else st.integers(1_500_000_000, _NOW))
    at.nanos = draw(st.sampled_from(_NANOS) if edge else st.integers(0, 999_999_999))
    return at


@st.composite
def messages(
    draw: st.DrawFn, descriptor: Descriptor, pools: Pools, depth: int = 0, wild: bool | None = None
) -> Message:
    """A message of `descriptor`, at most one member per oneof set. Most are plausible requests with here and
    there a field unset or at a boundary (a bug behind one odd field needs the others to be right); the
    rest (`wild`) set any field to anything."""
    if wild is None:
        wild = draw(st.integers(0, 3)) == 0
    if descriptor.full_name == "google.protobuf.Timestamp":
        return draw(timestamps(descriptor, wild))
    message = GetMessageClass(descriptor)()
    if depth > _MAX_DEPTH:
        return message
    chosen = {oneof.name: draw(st.sampled_from([None, *oneof.fields])) for oneof in descriptor.oneofs}
    for field in descriptor.fields:
        oneof = field.containing_oneof
        if oneof is not None and chosen[oneof.name] is not field:
            continue
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            continue  # no request carries a map
        roll = draw(st.integers(0, 2 if wild else 9))
        if roll == 0 and oneof is None:
            continue
        kind = Kind.ANY if wild and roll == 2 else Kind.EDGE if roll == 1 else Kind.PLAUSIBLE
        values = _values(field, pools, kind, depth)
        if field.is_repeated:
            items = draw(st.lists(values, min_size=0 if wild else 1, max_size=3))
            if items and kind is Kind.EDGE:
                items = items * draw(st.sampled_from(_REPEATED_EDGES))
            getattr(message, field.name).extend(items)
        elif field.type == FD.TYPE_MESSAGE:
            getattr(message, field.name).CopyFrom(draw(values))
        else:
            setattr(message, field.name, draw(values))
    return message


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _length_delimited(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _string_paths(descriptor: Descriptor, depth: int = 0) -> list[tuple[FieldDescriptor, ...]]:
    """Every way down to a string field (through message fields), shallow ones first."""
    paths: list[tuple[FieldDescriptor, ...]] = []
    for field in descriptor.fields:
        if field.type == FD.TYPE_STRING:
            paths.append((field,))
        elif field.type == FD.TYPE_MESSAGE and depth < 2 and not field.message_type.GetOptions().map_entry:
            paths += [(field, *rest) for rest in _string_paths(field.message_type, depth + 1)]
    return paths


@st.composite
def corrupted(draw: st.DrawFn, descriptor: Descriptor, pools: Pools) -> bytes:
    """The bytes of a request of `descriptor`, spoiled so that a strict decoder must refuse (most of) them."""
    data = draw(messages(descriptor, pools)).SerializeToString()
    paths = _string_paths(descriptor)
    how = draw(st.sampled_from(["bad_utf8", "truncate", "flip", "insert", "overlong", "random"]))
    if how == "bad_utf8" and paths:
        path = draw(st.sampled_from(paths))
        spoiled = draw(st.sampled_from([b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"ok\xf0\x28\x8c\x28"]))
        for field in reversed(path):
            spoiled = _length_delimited(field.number, spoiled)
        return data + spoiled
    if how == "truncate" and len(data) > 1:
        return data[: draw(st.integers(1, len(data) - 1))]
    if how == "flip" and data:
        at = draw(st.integers(0, len(data) - 1))
        return data[:at] + bytes([data[at] ^ draw(st.integers(1, 255))]) + data[at + 1 :]
    if how == "insert":
        at = draw(st.integers(0, len(data)))
        return data[:at] + draw(st.binary(min_size=1, max_size=8)) + data[at:]
    if how == "overlong" and descriptor.fields:
        field = draw(st.sampled_from(list(descriptor.fields)))
        return data + _varint(field.number << 3 | 2) + _varint(draw(st.integers(10, 2**31))) + b"short"
    return draw(st.binary(min_size=1, max_size=64))
