"""Accuracy of a finished run on the clean and the dirty items of a contamination audit,
each with a Wilson 95 % CI (GPT-3's contamination study, section 4).

A run directory holds `samples_<task>_<time>.jsonl` (one row per item and probe), read
with the report's `load_run`; the clean ids come from `llmassay audit contamination` (`clean_ids.json`, task → ids) or
from a plain text file with one id per line (applied to every task).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from llmassay.metrics import proportion
from llmassay.report.section import declared_binary_values
from llmassay.report.rundir import load_run
from llmassay.types import LlmassayError, Metric

SCORED_FIELDS = ("acc", "acc_norm", "acc_gen", "exact_match")  # for rows of probes not installed here


def read_clean_ids(path: str | Path) -> dict[str, set[str]] | set[str]:
    """task → clean ids (JSON object), or one set for every task (JSON list or text lines)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise LlmassayError(f"--clean-ids: cannot read {path} ({getattr(exc, 'strerror', None) or exc})") from None
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise LlmassayError(f"{path}: invalid JSON ({exc})") from None
        if isinstance(data, dict) and all(isinstance(v, list) for v in data.values()):
            return {str(k): {str(i) for i in v} for k, v in data.items()}
        if isinstance(data, list):
            return {str(i) for i in data}
        raise LlmassayError(f"{path}: expected an object task → [ids] or a list of ids")
    return {line.strip() for line in text.splitlines() if line.strip()}


def _outcomes(row: dict[str, Any]) -> dict[str, bool]:
    """Right/wrong per item for each of the row's probe's binary `sample_metrics` (the
    probe contract); for a probe not installed here, its top-level scored booleans."""
    probe = str(row.get("probe", "accuracy"))
    declared = declared_binary_values(probe, row)
    if declared is not None:
        return {f"{probe}/{name}": value for name, value in declared.items()}
    out = {f"{probe}/{k}": bool(row[k]) for k in SCORED_FIELDS if isinstance(row.get(k), bool)}
    variants = row.get("variants")
    if isinstance(variants, dict):
        for name, v in variants.items():
            if isinstance(v, dict) and isinstance(v.get("correct"), bool):
                out[f"{probe}/correct[{name}]"] = v["correct"]
    return out


@dataclass
class SubsetScores:
    metric: str
    all: Metric
    clean: Metric
    dirty: Metric

    def as_dict(self) -> dict[str, Any]:
        return {"metric": self.metric, **{k: asdict(getattr(self, k)) for k in ("all", "clean", "dirty")}}


def rescore(run_dir: str | Path, clean_ids_path: str | Path) -> dict[str, list[SubsetScores]]:
    """task → per metric: accuracy on all, clean and dirty items (Wilson 95 % CIs)."""
    clean = read_clean_ids(clean_ids_path)
    run = load_run(run_dir)  # the report's reader: every file and field checked, one-line errors
    result: dict[str, list[SubsetScores]] = {}
    for task, rows in run.samples.items():
        ids = clean.get(task) if isinstance(clean, dict) else clean
        if ids is None:
            continue
        values: dict[str, dict[str, list[bool]]] = {}
        for row in rows:
            subset = "clean" if str(row["id"]) in ids else "dirty"
            for metric, ok in _outcomes(row).items():
                bucket = values.setdefault(metric, {"clean": [], "dirty": []})
                bucket[subset].append(ok)
        result[task] = [
            SubsetScores(m, proportion(v["clean"] + v["dirty"]), proportion(v["clean"]), proportion(v["dirty"]))
            for m, v in values.items()
        ]
    if not result:
        wanted = ", ".join(clean) if isinstance(clean, dict) else "any"
        raise LlmassayError(
            f"--clean-ids: no task of the run ({', '.join(run.samples) or 'none with samples'}) "
            f"matches the clean ids' tasks ({wanted})"
        )
    return result
