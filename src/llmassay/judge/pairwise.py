"""Pairwise judging in both orders (MT-Bench): each pair is shown as (a, b) and as (b, a);
a win counts only when it survives the swap, and a pair whose two orders disagree is
*inconsistent*, never averaged into a win. Optionally the first order is asked twice
more at temperature > 0 to see whether the judge repeats itself.

Each row keeps the exact prompts and raw judge outputs, so every verdict can be audited.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from llmassay.judge.judges import Judge, JudgeQuery
from llmassay.judge.templates import JudgeTemplates
from llmassay.judge.verdict import parse_pairwise

Row = dict[str, Any]
SIDES = ("a", "b")
OUTCOMES = ("a", "b", "tie", "inconsistent", "unparseable")


@dataclass(frozen=True)
class PairItem:
    """Two answers to one question; `correct` ("a"/"b") when the truth is planted."""

    id: str
    question: str
    answer_a: str
    answer_b: str
    reference: str | None = None  # the exact answer, when known (the oracle judges by it)
    correct: str | None = None
    group: str = ""  # e.g. the task, or "plain" / "padded" in calibration
    show_reference: bool = True  # False: the judge is not told the answer (calibration)
    exact_reference: bool = True  # False: an open-ended task's reference, not an answer to match

    def shown(self, first: str) -> tuple[str, str]:
        return (self.answer_a, self.answer_b) if first == "a" else (self.answer_b, self.answer_a)


def winner(verdict: str | None, first: str) -> str | None:
    """A slot verdict (A/B/C) as the side that won ("a"/"b"/"tie") given who was shown first."""
    if verdict is None:
        return None
    if verdict == "C":
        return "tie"
    second = "b" if first == "a" else "a"
    return first if verdict == "A" else second


def outcome(winners: Sequence[str | None]) -> str:
    """Both orders agree → that side (or tie); they disagree → inconsistent; a missing one → unparseable."""
    if any(w is None for w in winners):
        return "unparseable"
    return winners[0] if len(set(winners)) == 1 else "inconsistent"  # type: ignore[return-value]


def judge_pairs(
    items: Sequence[PairItem],
    judge: Judge,
    templates: JudgeTemplates,
    repeats: int = 0,
    repeat_temperature: float = 0.7,
) -> list[Row]:
    """One row per pair; every judge request of every pair is sent in one batch."""
    queries: list[JudgeQuery] = []
    for item in items:
        for first in SIDES:
            queries.append(_query(item, first, templates, 0.0, 0))
        for r in range(repeats):  # the same pair, first order, sampled again
            queries.append(_query(item, "a", templates, repeat_temperature, r + 1))
    texts = judge.ask(queries)
    per = 2 + repeats
    rows = []
    for i, item in enumerate(items):
        asked = list(zip(queries[i * per:(i + 1) * per], texts[i * per:(i + 1) * per]))
        orders = [_order(q, t, first) for (q, t), first in zip(asked[:2], SIDES)]
        row: Row = {
            "id": item.id,
            "group": item.group,
            "question": item.question,
            "answer_a": item.answer_a,
            "answer_b": item.answer_b,
            "len_a": len(item.answer_a),
            "len_b": len(item.answer_b),
            "orders": orders,
            "outcome": outcome([o["winner"] for o in orders]),
        }
        if item.reference is not None:
            row["reference"] = item.reference
            if not item.exact_reference:
                row["reference_exact"] = False
        if item.correct is not None:
            row["correct"] = item.correct
        if repeats:
            row["repeats"] = [_order(q, t, "a") for q, t in asked[2:]]
        rows.append(row)
    return rows


def _query(item: PairItem, first: str, templates: JudgeTemplates, temperature: float, repeat: int) -> JudgeQuery:
    shown = item.shown(first)
    prompt = templates.render_pair(item.question, shown[0], shown[1], item.reference if item.show_reference else None)
    return JudgeQuery(prompt, "pairwise", shown, item.reference, temperature=temperature, repeat=repeat)


def _order(query: JudgeQuery, text: str, first: str) -> Row:
    parsed = parse_pairwise(text)
    out: Row = {"first": first, "prompt": query.prompt, "output": text, "verdict": parsed.value,
                "winner": winner(parsed.value, first)}
    if query.temperature:
        out["temperature"] = query.temperature
    if parsed.error:
        out["error"] = parsed.error
    return out
