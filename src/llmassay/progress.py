"""A rich progress bar on a terminal and nothing elsewhere (logs, CI, pipes stay clean)."""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext

from rich.console import Console
from rich.progress import Progress, ProgressColumn


def terminal_progress(console: Console, *columns: ProgressColumn | str) -> AbstractContextManager[Progress | None]:
    """`with terminal_progress(console, ...) as progress:` — progress is None off a terminal."""
    if not console.is_terminal:
        return nullcontext(None)
    return Progress(*columns, console=console, transient=True)
