"""The console every command prints its tables to."""

from __future__ import annotations

from rich.console import Console


def stdout_console() -> Console:
    """Tables keep their width when piped to a file (rich would wrap them at 80 columns)."""
    probe = Console()
    return probe if probe.is_terminal else Console(width=200)
