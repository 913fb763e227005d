"""Small run directories for the judge and review tests: two runs answering the same
arith-like items, with known right and wrong answers and one hostile output."""

from __future__ import annotations

import json
from pathlib import Path

HOSTILE = '<img src=x onerror="document.title=\'pwned\'"><script>document.title="pwned"</script>'
QUESTIONS = [("q0", "Calculate 1 + 1.", "2"), ("q1", "Calculate 2 + 2.", "4"), ("q2", "Calculate 3 + 3.", "6"),
             ("q3", "Calculate 4 + 4.", "8"), ("q4", "Calculate 5 + 5.", "10"), ("q5", "Calculate 6 + 6.", "12")]


def write_run(root: Path, answers: list[str]) -> Path:
    """A run directory whose samples file holds `answers[i]` for item i (accuracy rows)."""
    root.mkdir(parents=True, exist_ok=True)
    rows = [{"id": i, "prompt": f"Question: {q}\nAnswer:", "target": t, "generation": g}
            for (i, q, t), g in zip(QUESTIONS, answers)]
    (root / "samples_arith_2026-01-01T00-00-00.000000.jsonl").write_text(
        "".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return root


def two_runs(tmp: Path) -> tuple[Path, Path]:
    """Run A is right on q0-q2 and wrong on q3-q5; run B the reverse (q5: a hostile output)."""
    a = write_run(tmp / "run_a", ["2", "4", "6", "9", "11", "13"])
    b = write_run(tmp / "run_b", ["3", "5", "7", "8", "10", HOSTILE])
    return a, b
