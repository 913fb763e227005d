"""Two runs' generations, paired on (task, sample id), as judge items.

A run directory holds `samples_<task>_<timestamp>.jsonl` (every probe's rows); the latest
file per task is read and the first row of an id with a text `generation` is its answer.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from llmassay.judge.calibration import question_of
from llmassay.types import LlmassayError, Sample


@dataclass(frozen=True)
class Answer:
    task: str
    id: str
    question: str
    generation: str
    reference: str | None


def _latest_samples(run_dir: Path) -> dict[str, Path]:
    if not run_dir.is_dir():
        raise LlmassayError(f"{run_dir}: not a run directory (an --output-path of `llmassay run`)")
    latest: dict[str, Path] = {}
    for path in sorted(run_dir.glob("samples_*.jsonl")):
        task = path.name.removeprefix("samples_").rsplit("_", 1)[0]
        latest[task] = path  # sorted: the newest timestamp wins
    if not latest:
        raise LlmassayError(f"{run_dir}: no samples_*.jsonl (run `llmassay run … --output-path {run_dir}` first)")
    return latest


def load_answers(run_dir: str | Path) -> dict[tuple[str, str], Answer]:
    """(task, id) → the run's generation for that item."""
    out: dict[tuple[str, str], Answer] = {}
    for task, path in _latest_samples(Path(run_dir)).items():
        for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except ValueError:
                raise LlmassayError(f"{path}:{lineno}: not a JSON line") from None
            if not isinstance(row, dict) or not isinstance(row.get("generation"), str) or "id" not in row:
                continue
            key = (task, str(row["id"]))
            if key in out:
                continue
            target = row.get("target")
            sample = Sample(str(row["id"]), str(row.get("prompt", "")), None, "")
            out[key] = Answer(task, key[1], question_of(sample), row["generation"],
                              target if isinstance(target, str) else None)
    return out


def paired_answers(run_a: str | Path, run_b: str | Path) -> list[tuple[Answer, Answer]]:
    """Items both runs answered, in run A's order; an error when they share none."""
    a, b = load_answers(run_a), load_answers(run_b)
    common = [k for k in a if k in b]
    if not common:
        raise LlmassayError(f"{run_a} and {run_b} share no (task, sample id) with a generation to judge")
    for k in common:
        if a[k].question != b[k].question:
            raise LlmassayError(f"task {k[0]}, item {k[1]}: the two runs asked different questions (not comparable)")
    return [(a[k], b[k]) for k in common]


@lru_cache(maxsize=None)
def open_ended(task: str) -> bool:
    """A bundled task whose metadata says `open_ended: true` has references but no exact
    answers: an exact-match verdict on it would be noise, so none is shown or counted."""
    from llmassay.tasks.lmeval_yaml import TaskConfigError, read_config
    from llmassay.tasks.loader import bundled_tasks

    path = bundled_tasks().get(task)
    if path is None:
        return False
    try:
        config, _ = read_config(path)
    except TaskConfigError:  # a task that cannot be read is not ours to judge here
        return False
    return bool((config.get("metadata") or {}).get("open_ended"))
