"""The terminal view while the company is simulated: progress, throughput, ambassadors emerging."""

from __future__ import annotations

import time

from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from services.demo.evaluation import AMBASSADOR
from services.demo.watch import BadgeBoard
from services.simulator.driver import Progress as SimProgress


class LiveView:
    def __init__(self, board: BadgeBoard) -> None:
        self.board = board
        self.phase = "starting"
        self.sim: SimProgress | None = None
        self._rate = 0.0
        self._last: tuple[float, int] = (time.monotonic(), 0)
        self.progress = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total} days"),
            TimeElapsedColumn(),
        )  # fmt: skip
        self._task: TaskID = self.progress.add_task("simulating", total=1)

    def on_progress(self, progress: SimProgress) -> None:
        self.sim = progress
        self.phase = progress.phase
        now = time.monotonic()
        then, accepted = self._last
        if now - then >= 1.0:
            self._rate = (progress.accepted - accepted) / (now - then)
            self._last = (now, progress.accepted)
        self.progress.update(
            self._task,
            total=progress.days_total,
            completed=min(progress.day_index + 1, progress.days_total),
            description=f"{progress.phase} {progress.simulated_date or ''}",
        )

    def __rich__(self) -> RenderableType:
        stats = Table.grid(padding=(0, 2))
        stats.add_column(style="dim")
        stats.add_column()
        sim = self.sim
        stats.add_row("phase", self.phase)
        stats.add_row("interactions accepted", f"{sim.accepted:,}" if sim else "0")
        stats.add_row("ingest rate", f"{self._rate:,.0f} events/s")
        stats.add_row("score updates seen", f"{self.board.score_events:,}")
        granted = ", ".join(f"{b} {n}" for b, n in sorted(self.board.granted.items())) or "none yet"
        stats.add_row("badges granted", granted)
        revoked = ", ".join(f"{b} {n}" for b, n in sorted(self.board.revoked.items())) or "none"
        stats.add_row("badges revoked", revoked)

        departments = Table(title="Intranet Ambassadors by department", expand=False)
        departments.add_column("department")
        departments.add_column("ambassadors", justify="right")
        for dept, count in sorted(self.board.ambassadors_by_department(AMBASSADOR).items()):
            departments.add_row(dept, "★" * min(count, 20) + f" {count}")

        recent = "\n".join(self.board.recent) or "waiting for the first badge..."
        return Group(
            self.progress,
            Panel(stats, title="Catalyst"),
            departments,
            Panel(recent, title="latest badges"),
        )
