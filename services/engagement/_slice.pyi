"""Types of the compiled slice module (_slice.c)."""

from collections.abc import Sequence

from services.engagement.scoring import Op

SHIFT: int

class Rules:
    keep_days: int
    pair_cap: int
    pair_memory_days: int
    def __init__(
        self, keep_days: int, pair_cap: int, pair_memory_days: int, actions: int, received: int, updates: int
    ) -> None: ...

class Slice:
    mark: int
    count: int
    top: int
    base: int
    own: int
    profile_ms: int
    dept_ms: int
    completeness: float
    owned: bool
    pilot: tuple[int, int, int, int]
    department: str
    name: str
    def apply(self, entries: Sequence[tuple[int, Op]], rules: Rules) -> tuple[int, int, int]: ...
    def prune(self, rules: Rules) -> None: ...
    def encode(self) -> bytes: ...

def decode(blob: bytes) -> Slice: ...
def write(
    items: list[tuple[str, dict[int, list[tuple[int, Op]]]]],
    entries: list[tuple[tuple[Slice, ...], bytes, bytes, int, bytes]],
    fields: list[bytes | None],
    rules: Rules,
    now: bytes,
    written: list[tuple[str, list[int]]],
    dirty: dict[int, list[bytes]],
    moved: list[tuple[str, str, str]],
) -> tuple[int, int, bytes]: ...
def merge_tables(
    slices: Sequence[Slice], width: int
) -> tuple[dict[int, list[int]], dict[int, tuple[int, bool]], dict[int, int]]: ...
