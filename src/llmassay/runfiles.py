"""How a run's files are named: shared by the writer (engine/store.py) and every reader
(the report, `compare`, `rescore`), which import only this light module."""

from __future__ import annotations

from pathlib import Path


def latest_results(output_path: str | Path) -> Path | None:
    files = sorted(Path(output_path).glob("results_*.json"))
    return files[-1] if files else None


def safe_name(name: str) -> str:
    """A task or probe name as a file-name part (the results files and the report agree on it)."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
