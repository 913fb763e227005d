"""What reviewers see, most informative first.

A judge output directory (`judge_pairs.jsonl`) gives pairwise items (label A / B / tie);
a run directory gives single answers (label correct / incorrect). Order: items the judge
got inconsistent across orders, then where the judge and the exact-match metric disagree
(tasks marked `open_ended`, e.g. open_prompts, have no such metric),
then the most brittle items (answers that flip under the brittleness probe's variants; for
pairs, in either judged run), then the rest in file order.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from llmassay.judge.runs import open_ended
from llmassay.metrics import exact_match
from llmassay.types import LlmassayError

PAIR_LABELS = ("a", "b", "tie")
SINGLE_LABELS = ("correct", "incorrect")
REASONS = ("judge inconsistent across orders", "judge and metric disagree", "brittle item", "")


@dataclass(frozen=True)
class ReviewItem:
    key: str  # "task/id": unique across tasks
    kind: str  # "pairwise" | "single"
    prompt: str
    outputs: tuple[str, ...]
    reference: str | None = None
    judge: str | None = None  # the judge's label in this item's label set (None: no verdict)
    metric: str | None = None  # the exact-match metric's label, when a reference exists
    reason: str = ""  # why it is early in the queue
    flips: float = 0.0
    judge_scores: tuple[int | None, ...] = ()  # the judge's 1–10 rubric grade per answer (`--rubric`)

    @property
    def labels(self) -> tuple[str, ...]:
        return PAIR_LABELS if self.kind == "pairwise" else SINGLE_LABELS

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _jsonl(path: Path) -> list[dict[str, Any]]:
    rows = []
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except ValueError:
                raise LlmassayError(f"{path}:{lineno}: not a JSON line") from None
    return rows


def _metric_winner(a: str, b: str, reference: str | None) -> str | None:
    if reference is None:
        return None
    right = (exact_match(a, reference), exact_match(b, reference))
    return "a" if right == (True, False) else "b" if right == (False, True) else "tie"


def judge_grades(root: Path) -> dict[str, dict[str, int]]:
    """slot ("a"/"b") → "task/id" → the judge's 1–10 grade, from `judge --rubric --scale 1-10`."""
    out: dict[str, dict[str, int]] = {}
    for slot in ("a", "b"):
        path = root / f"judge_grades_{slot}.jsonl"
        if path.exists():
            out[slot] = {f"{r.get('task', '')}/{r['id']}": int(r["grade"]) for r in _jsonl(path)
                         if str(r.get("grade", "")).isdigit()}
    return out


def _pair_items(path: Path) -> list[ReviewItem]:
    items = []
    grades = judge_grades(path.parent)
    flips = _judged_run_flips(path.parent)
    for r in _jsonl(path):
        judge = {"a": "a", "b": "b", "tie": "tie", "inconsistent": "tie"}.get(r.get("outcome", ""))
        exact = not open_ended(str(r.get("group", "")))
        metric = _metric_winner(r["answer_a"], r["answer_b"], r.get("reference")) if exact else None
        key = f"{r.get('group', '')}/{r['id']}"
        f = flips.get(key, 0.0)
        reason = (REASONS[0] if r.get("outcome") == "inconsistent"
                  else REASONS[1] if metric is not None and judge is not None and metric != judge
                  else REASONS[2] if f > 0 else "")
        scores = tuple(grades.get(slot, {}).get(key) for slot in ("a", "b")) if grades else ()
        items.append(ReviewItem(key, "pairwise", r["question"], (r["answer_a"], r["answer_b"]), r.get("reference"),
                                judge, metric, reason, f, judge_scores=scores))
    return items


def _flip_counts(rows: list[dict[str, Any]]) -> dict[str, float]:
    out = {}
    for r in rows:
        variants = r.get("variants")
        if isinstance(variants, dict) and variants:
            preds = [v.get("pred") for v in variants.values() if isinstance(v, dict)]
            out[str(r["id"])] = float(len(set(map(str, preds))) - 1)
    return out


def _run_flips(run_dir: Path) -> dict[str, float]:
    """"task/id" → how many distinct answers beyond one the brittleness probe's variants gave."""
    out: dict[str, float] = {}
    for path in sorted(run_dir.glob("samples_*.jsonl")):
        task = path.name.removeprefix("samples_").rsplit("_", 1)[0]
        out.update({f"{task}/{i}": f for i, f in _flip_counts(_jsonl(path)).items()})
    return out


def _judged_run_flips(judge_dir: Path) -> dict[str, float]:
    """Brittleness of the judged runs' items (A's and B's flips added), when those runs are
    still where `judge_results.json` says (as given on the command line)."""
    results = judge_dir / "judge_results.json"
    runs = (json.loads(results.read_text(encoding="utf-8")).get("runs") or {}) if results.exists() else {}
    out: dict[str, float] = {}
    for run in runs.values():
        root = Path(str(run))
        for key, f in _run_flips(root if root.is_dir() else root.parent).items():
            out[key] = out.get(key, 0.0) + f
    return out


def _single_items(run_dir: Path) -> list[ReviewItem]:
    items = []
    for path in sorted(run_dir.glob("samples_*.jsonl")):
        task = path.name.removeprefix("samples_").rsplit("_", 1)[0]
        rows = _jsonl(path)
        flips = _flip_counts(rows)
        seen = set()
        for r in rows:
            if not isinstance(r.get("generation"), str) or str(r.get("id")) in seen:
                continue
            seen.add(str(r["id"]))
            target = r.get("target") if isinstance(r.get("target"), str) else None
            metric = (None if target is None or open_ended(task)
                      else "correct" if exact_match(r["generation"], target) else "incorrect")
            f = flips.get(str(r["id"]), 0.0)
            items.append(ReviewItem(f"{task}/{r['id']}", "single", str(r.get("prompt", "")), (r["generation"],),
                                    target, None, metric, REASONS[2] if f > 0 else "", f))
    return items


def load_queue(run_dir: str | Path) -> list[ReviewItem]:
    root = Path(run_dir)
    if not root.is_dir():
        raise LlmassayError(f"{root}: not a directory (a run's or `llmassay judge`'s --output-path)")
    pairs = root / "judge_pairs.jsonl"
    items = _pair_items(pairs) if pairs.exists() else _single_items(root)
    if not items:
        raise LlmassayError(f"{root}: nothing to review (no judge_pairs.jsonl, no samples with a generation)")
    rank = {reason: i for i, reason in enumerate(REASONS)}
    return sorted(items, key=lambda it: (rank[it.reason], -it.flips))  # stable: file order within a rank


def judge_score_map(items: list[ReviewItem]) -> dict[str, int]:
    """score key → the judge's rubric grade, for agreement with people's scores."""
    from llmassay.review.store import score_key

    return {score_key(it.key, slot): g for it in items for slot, g in zip(("a", "b"), it.judge_scores) if g is not None}
