"""Planted truth for a judge, run before trusting it.

From a task with exact answers, each item gives two pairs whose right side is known:
*plain* — the reference vs a wrong answer of the same form (arith: the result ± 1..9) —
and *padded* — the same wrong answer dressed in a long, confident explanation against
the bare right one. Accuracy on plain pairs says whether the judge can tell right from
wrong at all; the drop from plain to padded on the same items measures, causally, how
much verbosity alone sways it.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from llmassay.hashing import stable_hash
from llmassay.judge.pairwise import PairItem
from llmassay.judge.stats import correct_share, debiased_correct, informative
from llmassay.metrics import bootstrap_mean, exact_match
from llmassay.types import LlmassayError, Metric, Sample

PADDING = (
    "Let me work through this carefully, step by step. First I read each number and its sign, then I "
    "combine the terms in the order they are written, and finally I check the result a second time to be "
    "sure nothing was missed. After double-checking every step, the final answer is {answer}."
)
GROUPS = ("plain", "padded")


@dataclass(frozen=True)
class Item:
    """A question with its exact reference answer."""

    id: str
    question: str
    reference: str


def question_of(sample: Sample) -> str:
    """The item's own question: the prompt's last block, without few-shot examples or the
    trailing "Answer:" cue (a judge is shown the question, not the scoring scaffold)."""
    block = sample.prompt.strip().split("\n\n")[-1].strip()
    for cue in ("Answer:", "A:"):
        if block.endswith(cue):
            block = block[: -len(cue)].rstrip()
    return block.removeprefix("Question:").strip()


def items_of(samples: Sequence[Sample], task_name: str) -> list[Item]:
    items = [Item(s.id, question_of(s), str(s.target)) for s in samples if isinstance(s.target, str) and s.target]
    if not items:
        raise LlmassayError(f"task '{task_name}': calibration needs items with exact string answers (generate_until)")
    return items


def wrong_answer(item: Item, others: Sequence[Item], seed: int) -> str:
    """A wrong answer of the same form: an integer off by 1..9, else another item's answer."""
    rng = random.Random(stable_hash({"seed": seed, "id": item.id, "what": "wrong"}))
    try:
        value = int(item.reference.strip())
    except ValueError:
        pool = [o.reference for o in others if not exact_match(o.reference, item.reference)]
        if not pool:
            raise LlmassayError(f"item {item.id}: no other answer to use as the wrong one") from None
        return rng.choice(pool)
    return str(value + rng.choice([-1, 1]) * rng.randint(1, 9))


def calibration_pairs(items: Sequence[Item], seed: int = 0) -> list[PairItem]:
    """Two pairs per item (plain, padded), the right answer on a seeded random side."""
    pairs = []
    for item in items:
        wrong = wrong_answer(item, items, seed)
        right_side = "a" if random.Random(stable_hash({"seed": seed, "id": item.id, "what": "side"})).random() < 0.5 else "b"
        for group, bad in (("plain", wrong), ("padded", PADDING.format(answer=wrong))):
            a, b = (item.reference, bad) if right_side == "a" else (bad, item.reference)
            pairs.append(PairItem(item.id, item.question, a, b, item.reference, right_side, group, show_reference=False))
    return pairs


def calibration_metrics(rows: Sequence[dict[str, Any]], seed: int = 0) -> tuple[dict[str, Metric], dict[str, Any]]:
    """accuracy (plain pairs), accuracy_padded, verbosity_effect (plain − padded, per item)
    and whether the judge is informative (plain accuracy's CI above chance)."""
    by_group: dict[str, dict[str, float]] = {g: {} for g in GROUPS}
    for r in rows:
        share = correct_share(r)
        if share is not None and r.get("group") in by_group:
            by_group[r["group"]][r["id"]] = share
    metrics: dict[str, Metric] = {}
    if by_group["plain"]:
        metrics["accuracy"] = bootstrap_mean(list(by_group["plain"].values()), seed)
    if by_group["padded"]:
        metrics["accuracy_padded"] = bootstrap_mean(list(by_group["padded"].values()), seed)
    both = [i for i in by_group["plain"] if i in by_group["padded"]]
    if both:
        metrics["verbosity_effect"] = bootstrap_mean([by_group["plain"][i] - by_group["padded"][i] for i in both], seed)
    for group, name in (("plain", "accuracy_debiased"), ("padded", "accuracy_padded_debiased")):
        values = [v for v in (debiased_correct(r) for r in rows if r.get("group") == group) if v is not None]
        if values:  # loglik verdicts: right once the slot preference is averaged out over both orders
            metrics[name] = bootstrap_mean(values, seed)
    return metrics, {"informative": informative(metrics.get("accuracy")), "items": len(by_group["plain"])}
