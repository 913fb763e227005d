"""Progress display for every long loop: a rich bar on a terminal and nothing elsewhere
(logs, CI, pipes stay clean); for corpus streams, a meter that also keeps the documents,
bytes and seconds every audit reports."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass

from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, ProgressColumn, TextColumn, TimeElapsedColumn


_SHOW_PROGRESS = {"on": True}  # the CLI's -q turns bars off (show_progress)


def show_progress(enabled: bool) -> None:
    """Whether progress bars are drawn at all (`llmassay -q`: no bar, even on a terminal)."""
    _SHOW_PROGRESS["on"] = enabled


def terminal_progress(
    console: Console, *columns: ProgressColumn | str, speed_estimate_period: float = 30.0
) -> AbstractContextManager[Progress | None]:
    """`with terminal_progress(console, ...) as progress:` — progress is None off a terminal or under -q."""
    if not console.is_terminal or not _SHOW_PROGRESS["on"]:
        return nullcontext(None)
    return Progress(*columns, console=console, transient=True, speed_estimate_period=speed_estimate_period)


@dataclass
class Throughput:
    """Documents and bytes of document text (UTF-8, without the JSON around it) seen, and
    the wall time they took: reported in every audit."""

    docs: int = 0
    bytes: int = 0
    seconds: float = 0.0

    def as_dict(self) -> dict[str, float]:
        secs = max(self.seconds, 1e-9)
        return {
            "docs": self.docs,
            "bytes": self.bytes,
            "seconds": round(self.seconds, 3),
            "docs_per_s": round(self.docs / secs, 1),
            "mb_per_s": round(self.bytes / secs / 1e6, 3),
        }


class StreamMeter:
    """Counts documents as they stream and feeds the bar (when there is one)."""

    def __init__(self, progress: Progress | None, total_bytes: int | None) -> None:
        self.stats = Throughput()
        self._progress = progress
        self._bar = progress.add_task("reading", total=total_bytes, docs="") if progress else None
        self._start = time.perf_counter()

    def advance(self, docs: int, n_bytes: int) -> None:
        self.stats.docs += docs
        self.stats.bytes += n_bytes
        self.stats.seconds = time.perf_counter() - self._start
        if self._progress is not None and self._bar is not None:
            rate = self.stats.docs / max(self.stats.seconds, 1e-9)
            self._progress.update(self._bar, advance=n_bytes, docs=f"{self.stats.docs:,} docs · {rate:,.0f} docs/s")


@contextmanager
def stream_meter(description: str, total_bytes: int | None, console: Console | None = None) -> Iterator[StreamMeter]:
    """A meter for one pass over a corpus: bytes against the corpus size, documents and docs/s."""
    console = console or Console(stderr=True)
    columns = (
        TextColumn(description),
        BarColumn(),
        DownloadColumn(),
        TextColumn("{task.fields[docs]}"),
        TimeElapsedColumn(),
    )
    with terminal_progress(console, *columns) as progress:
        yield StreamMeter(progress, total_bytes)


class _CurrentStderr(logging.Handler):
    """Writes to whatever sys.stderr is *now*: under a live bar rich swaps it for a proxy
    that prints above the bar, so a notice never tears the bar apart."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            print(self.format(record), file=sys.stderr, flush=True)
        except Exception:  # a closed stream must not end a run
            self.handleError(record)


def show_notices(level: int = logging.INFO) -> None:
    """Print the `llmassay` logger's notices (retries, which results file was read) as
    bare lines on stderr: what the CLI does; library users configure logging themselves."""
    logger = logging.getLogger("llmassay")
    if not any(isinstance(h, _CurrentStderr) for h in logger.handlers):
        handler = _CurrentStderr()
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
    logger.setLevel(level)
