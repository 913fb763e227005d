"""How a run's files are named: shared by the writer (engine/store.py) and every reader
(the report, `compare`, `rescore`), which import only this light module."""

from __future__ import annotations

import json
from pathlib import Path

from llmassay.types import LlmassayError


def latest_results(output_path: str | Path) -> Path | None:
    files = sorted(Path(output_path).glob("results_*.json"))
    return files[-1] if files else None


def safe_name(name: str) -> str:
    """A task or probe name as a file-name part (the results files and the report agree on it)."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


def run_identity(path: Path) -> str:
    """What tells two runs apart in one folder: the config hash (model, tasks, options,
    fingerprint) a results file records; an unreadable file is its own run."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return f"unreadable:{path.name}"
    if not isinstance(doc, dict):
        return f"unreadable:{path.name}"
    model = doc["model"] if isinstance(doc.get("model"), dict) else {}
    return str(doc.get("config_hash") or model.get("spec") or path.name)


def _model_of(path: Path) -> str:
    try:
        return str(json.loads(path.read_text(encoding="utf-8"))["model"]["spec"])
    except (OSError, ValueError, KeyError, TypeError):
        return "?"


def pick_results(folder: Path) -> tuple[Path, str | None]:
    """The results file a folder stands for, and a line saying which one was taken when
    there was a choice.

    Reruns of one command (a resumed run) leave several results files of the same run:
    the newest is taken and named. Files of different runs (another model or config sent
    to the same --output-path) are ambiguous: an error that lists them, so the user names one.
    """
    files = sorted(folder.glob("results_*.json"))
    if not files:
        raise LlmassayError(f"{folder}: no results_*.json in this directory (is it an --output-path of `llmassay run`?)")
    newest = files[-1]
    if len(files) == 1:
        return newest, None
    runs: dict[str, list[Path]] = {}
    for f in files:
        runs.setdefault(run_identity(f), []).append(f)
    if len(runs) > 1:
        listed = "; ".join(f"{_model_of(fs[-1])}: {fs[-1].name}" for fs in runs.values())
        raise LlmassayError(f"{folder}: holds results of {len(runs)} different runs ({listed}); "
                            f"name one results_*.json file instead of the folder")
    return newest, f"reading {newest} (the newest of {len(files)} results files of the same run)"
