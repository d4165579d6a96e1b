"""Types of the compiled planner module (_plan.c)."""

from collections.abc import Callable, Sequence

from services.engagement.batch import Record
from services.engagement.scoring import Op

class Planner:
    def __init__(
        self,
        accepted: dict[str, str],
        counters: dict[str, int],
        pseudonyms: dict[str, tuple[int, str]],
        pseudonym_of: Callable[[str], tuple[int, str]],
        op_type: type[Op],
        max_id: int,
    ) -> None: ...
    def plan(
        self, records: Sequence[Record], now_ms: int, max_future_ms: int
    ) -> tuple[
        dict[str, dict[int, list[tuple[int, Op]]]],
        dict[tuple[str, int], set[int]],
        list[str],
        list[tuple[Record, str]],
        dict[str, int],
        int,
    ]: ...
