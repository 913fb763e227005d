"""Single-answer grading against a reference and a rubric (MT-Bench's "single" judge):
pass/fail or a 1–10 score per answer, with a CI over items. Unparseable grades are
counted and left out of the score, never guessed."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from llmassay.judge.judges import Judge, JudgeQuery
from llmassay.judge.runs import Answer
from llmassay.judge.templates import SCALES, JudgeTemplates
from llmassay.judge.verdict import parse_rating
from llmassay.metrics import bootstrap_mean, proportion
from llmassay.types import LlmassayError, Metric

Row = dict[str, Any]


def grade_answers(
    answers: Sequence[Answer], judge: Judge, templates: JudgeTemplates, rubric: str | None, scale: str = "1-10"
) -> list[Row]:
    if scale not in SCALES:
        raise LlmassayError(f"--scale {scale}: unknown (known: {', '.join(SCALES)})")
    queries = [
        JudgeQuery(templates.render_grade(a.question, a.generation, a.reference, rubric, scale), "grade",
                   (a.generation,), a.reference, scale)
        for a in answers
    ]
    rows = []
    for a, q, text in zip(answers, queries, judge.ask(queries)):
        parsed = parse_rating(text, scale)
        row: Row = {"task": a.task, "id": a.id, "answer": a.generation, "prompt": q.prompt, "output": text,
                    "grade": parsed.value, "score": _score(parsed.value, scale)}
        if parsed.error:
            row["error"] = parsed.error
        rows.append(row)
    return rows


def _score(grade: str | None, scale: str) -> float | None:
    if grade is None:
        return None
    return float(grade == "pass") if scale == "pass-fail" else float(grade)


def grade_metrics(rows: Sequence[Row], scale: str, seed: int = 0) -> dict[str, Metric]:
    """score (pass rate, Wilson; or mean 1–10, bootstrap) and the unparseable share."""
    scores = [r["score"] for r in rows if r["score"] is not None]
    out = {"unparseable": proportion([r["score"] is None for r in rows])}
    if scores:
        out["score"] = proportion(scores) if scale == "pass-fail" else bootstrap_mean(scores, seed)
    return out
