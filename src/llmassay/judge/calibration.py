"""Planted truth for a judge, run before trusting it.

From a task with exact answers, each item gives two pairs whose right side is known:
*plain* — the reference vs a wrong answer of the same form (arith: the result ± 1..9) —
and *padded* — the same wrong answer dressed in a long, confident explanation against
the bare right one. Accuracy on plain pairs says whether the judge can tell right from
wrong at all; the drop from plain to padded on the same items measures, causally, how
much verbosity alone sways it — the only length figure here: on padded pairs the wrong
answer is always the longer one, so "share choosing the longer answer" is just 1 − padded
accuracy, and a judge that is always right would score −0.5 on it.

Accuracies are shares per item (both orders averaged) with Wilson CIs over items; the
verbosity effect is a paired difference with a bootstrap CI over items (the Wilson bounds'
difference when every item's difference is equal, e.g. 0 for a judge that is always right).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from llmassay.hashing import stable_hash
from llmassay.judge.pairwise import PairItem
from llmassay.judge.stats import MIN_CALIBRATION_ITEMS, correct_share, debiased_correct, informative, uninformative_reason
from llmassay.metrics import exact_match, paired_gap, proportion
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
    """accuracy (plain pairs), accuracy_padded, verbosity_effect (plain − padded, per item),
    their debiased forms for loglik verdicts, and whether the judge is informative (plain
    accuracy's Wilson CI above chance on at least MIN_CALIBRATION_ITEMS items)."""
    metrics: dict[str, Metric] = {}
    for read, suffix in ((correct_share, ""), (debiased_correct, "_debiased")):
        plain, padded = _per_item(rows, "plain", read), _per_item(rows, "padded", read)
        if plain:
            metrics[f"accuracy{suffix}"] = proportion(list(plain.values()))
        if padded:
            metrics[f"accuracy_padded{suffix}"] = proportion(list(padded.values()))
        both = [i for i in plain if i in padded]
        if both:  # the causal effect of padding the wrong answer, paired per item
            metrics[f"verbosity_effect{suffix}"] = paired_gap(
                [plain[i] - padded[i] for i in both], proportion([plain[i] for i in both]),
                proportion([padded[i] for i in both]), seed)
    accuracy = metrics.get("accuracy")
    details: dict[str, Any] = {"informative": informative(accuracy), "items": accuracy.n if accuracy else 0,
                               "min_items": MIN_CALIBRATION_ITEMS}
    if not details["informative"]:
        details["uninformative_because"] = uninformative_reason(accuracy)
    return metrics, details


def _per_item(rows: Sequence[dict[str, Any]], group: str, read: Callable[[dict[str, Any]], float | None]) -> dict[str, float]:
    """item id → `read` of its pair in `group`, where it has a value."""
    out = {}
    for r in rows:
        value = read(r) if r.get("group") == group else None
        if value is not None:
            out[r["id"]] = value
    return out
