"""The bar `llmassay judge` shows while a model judges: one phase at a time (calibration,
pairs, rubric grades), moving with every answered request, on a terminal only."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from llmassay.progress import terminal_progress

if TYPE_CHECKING:
    from llmassay.engine.engine import Engine


class JudgeMeter:
    """Follows the engine's call in progress (its unique requests, answered or cached)."""

    def __init__(self, progress: Progress | None) -> None:
        self.progress = progress
        self.engine: Engine | None = None
        self.bar = progress.add_task("judge", total=None) if progress else None
        self.phases: list[str] = []

    def attach(self, engine: Engine) -> None:
        self.engine = engine
        engine.on_progress = self.answered

    def phase(self, description: str) -> None:
        self.phases.append(description)
        if self.progress is not None and self.bar is not None:
            self.progress.reset(self.bar, description=description, total=None)

    def answered(self, n: int) -> None:
        if self.progress is None or self.bar is None or self.engine is None:
            return
        pending = self.engine.pending
        self.progress.update(self.bar, completed=pending.done, total=pending.total or None)


@contextmanager
def judge_meter(console: Console | None = None) -> Iterator[JudgeMeter]:
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("requests"),
               TimeRemainingColumn())
    with terminal_progress(console or Console(stderr=True), *columns, speed_estimate_period=300.0) as progress:
        yield JudgeMeter(progress)
