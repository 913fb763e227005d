"""What a run shows while it works and says when it is stopped: the progress bar that
moves with every answer, and the count of what Ctrl-C leaves behind."""

from __future__ import annotations

import time
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

from llmassay.engine.engine import Engine
from llmassay.engine.store import PROGRESS_DIR
from llmassay.progress import terminal_progress


def run_progress(console: Console) -> AbstractContextManager[Progress | None]:
    return terminal_progress(
        console,
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[samples]} samples · {task.fields[work]}"),
        TimeRemainingColumn(),
        speed_estimate_period=600.0,  # a slow model answers once a minute: average over minutes
    )


class RunMeter:
    """Moves the bar with every answer, not every chunk: the bar's position is the finished
    samples plus the share of the current chunk's requests answered, so a run of four slow
    samples moves (and has an ETA) from its first answer. Samples are counted whole."""

    def __init__(self, progress: Progress | None, engine: Engine, total: int, chunk_size: int) -> None:
        self.progress, self.engine, self.total, self.chunk_size = progress, engine, total, chunk_size
        self.bar = progress.add_task("evaluating", total=total, samples="", work="") if progress else None
        self.done = 0  # finished samples, all jobs
        self.job_left = 0  # samples of the current job not finished
        self.position = 0.0
        self.calls_before = 0  # engine calls made before the current chunk began
        self.started = time.perf_counter()

    def start_job(self, description: str, n_samples: int) -> None:
        self.job_left = n_samples
        self.calls_before = self.engine.pending.calls
        self._show(description=description)

    def samples(self, n: int) -> None:
        """A chunk finished (or resumed samples were found): it now counts whole."""
        self.done += n
        self.job_left -= n
        self.calls_before = self.engine.pending.calls
        self._show()

    def answered(self, n: int) -> None:
        self._show()

    def _share(self) -> float:
        """The current chunk's answered share of its requests, as samples."""
        pending = self.engine.pending
        if pending.calls <= self.calls_before or not pending.total:
            return 0.0
        return min(self.chunk_size, max(self.job_left, 0)) * min(1.0, pending.done / pending.total)

    def _show(self, **fields: Any) -> None:
        # Never backwards: a probe's second engine call in one chunk (retries) restarts its share.
        self.position = min(self.total, max(self.position, self.done + self._share()))
        if self.progress is None or self.bar is None:
            return
        elapsed = max(1e-9, time.perf_counter() - self.started)
        pending = self.engine.pending
        self.progress.update(
            self.bar, completed=self.position, samples=f"{self.done:,}/{self.total:,}",
            work=f"{pending.done}/{pending.total} requests · {pending.tokens / elapsed:,.0f} tok/s", **fields,
        )


class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C during a run, carrying what was kept (the CLI prints it)."""


@dataclass
class Kept:
    """What an interrupted run leaves behind, counted rather than promised: samples in the
    progress files (a sample is saved when its chunk finishes) and answers in the cache."""

    total: int
    chunk_size: int
    root: Path
    cache: Path | None
    logs: list[Any] = field(default_factory=list)

    def say(self, cached: int) -> str:
        saved = sum(len(log.rows) for log in self.logs)
        if saved:
            samples = f"{saved} of {self.total} samples are saved in {self.root / PROGRESS_DIR}"
        else:
            samples = (f"no sample is saved (0 of {self.total}: a sample is saved when its chunk of "
                       f"{self.chunk_size} finishes; see --chunk-size)")
        if self.cache is None:
            answers = "no answers are kept (--no-cache)"
        else:
            answers = f"{cached} answer{'' if cached == 1 else 's'} kept in the cache {self.cache}"
        resume = "rerun the same command to resume" if saved or cached else "nothing to resume"
        return f"interrupted: {samples}; {answers}; {resume}"
