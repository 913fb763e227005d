"""Verdicts read from a judge's log-probabilities instead of its generated text.

A small model asked to write "[[A]]" rambles, answers the question itself or echoes the
format line: 98–100 % of its generated verdicts are unparseable. Asked instead which
continuation of "… Verdict: [[" it finds more likely — "A" or "B" (and "C", a tie, when
enabled) — it always answers, so unparseable = 0 by construction and its position,
length and calibration figures exist. Rubric grades work the same way ("PASS"/"FAIL",
or "1".."10").

Every choice is scored through the engine's log-likelihood requests (deduplicated,
cached, counted). The judge returns text like any other ("[[A]] log P: A=-0.41 B=-1.09"),
so the verdict parser, the stored raw outputs and every statistic stay the same. At
temperature 0 the most likely choice wins; at temperature T > 0 (repeat stability) the
verdict is drawn from softmax(log P / T) with a seeded generator: same seed, same draws.
"""

from __future__ import annotations

import math
import random
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from llmassay.hashing import stable_hash
from llmassay.judge.chat import Renderer
from llmassay.judge.judges import JudgeQuery
from llmassay.types import LoglikelihoodRequest

if TYPE_CHECKING:
    from llmassay.engine.engine import Engine

VERDICT_MODES = ("generate", "loglik")
TIE = "C"
SCORES = re.compile(r"\b([ABC])=(-?\d+(?:\.\d+)?)")


def verdict_context(prompt: str) -> str:
    """The judge prompt, ending where the verdict letter comes next: kept as is when it
    already ends in "[[", completed with " [[" after a closing cue ("Verdict:"), else
    given MT-Bench's verdict line."""
    text = prompt.rstrip()
    if text.endswith("[["):
        return text
    if text.endswith(":"):
        return text + " [["
    return text + "\n\nFinal verdict: [["


def choices(query: JudgeQuery, ties: bool) -> tuple[str, ...]:
    """What the judge may answer to this query, as the text inside the brackets."""
    if query.kind == "grade":
        return ("PASS", "FAIL") if query.scale == "pass-fail" else tuple(str(i) for i in range(1, 11))
    return ("A", "B", TIE) if ties else ("A", "B")


def pick(scores: dict[str, float], temperature: float, rng: random.Random) -> str:
    """The most likely choice at T = 0 (a pairwise dead heat is a tie; a grade dead heat
    takes the first choice, PASS or the lowest score — with real log-probabilities a dead
    heat is vanishingly rare); at T > 0 a draw from softmax(log P / T)."""
    names = list(scores)
    if temperature <= 0:
        best = max(scores.values())
        top = [n for n in names if scores[n] == best]
        return top[0] if len(top) == 1 else (TIE if set(top) <= {"A", "B", TIE} else top[0])
    peak = max(scores.values())
    weights = [math.exp((scores[n] - peak) / temperature) for n in names]
    return rng.choices(names, weights)[0]


class LoglikJudge:
    """A model as judge whose verdict is its most likely answer among the allowed ones.
    With `chat` (a renderer from `judge.chat`), the prompt is one user turn of the judge's
    chat template and the letter is scored after the assistant's opening "[["."""

    def __init__(self, engine: Engine, name: str, ties: bool = False, seed: int = 0,
                 chat: Renderer | None = None, template: str = "none (raw prompt)") -> None:
        self.engine, self.name, self.ties, self.seed = engine, name, ties, seed
        self.chat, self.template = chat, template

    def context(self, prompt: str) -> str:
        return self.chat(prompt) + "[[" if self.chat else verdict_context(prompt)

    def requests(self, queries: Sequence[JudgeQuery]) -> list[LoglikelihoodRequest]:
        return [LoglikelihoodRequest(self.context(q.prompt), c) for q in queries for c in choices(q, self.ties)]

    def ask(self, queries: Sequence[JudgeQuery]) -> list[str]:
        results = iter(self.engine.loglikelihood(self.requests(queries)))
        out = []
        for q in queries:
            scores = {c: next(results).logprob for c in choices(q, self.ties)}
            rng = random.Random(stable_hash({"seed": self.seed, "prompt": q.prompt, "repeat": q.repeat}))
            shown = " ".join(f"{c}={lp:.3f}" for c, lp in scores.items())
            out.append(f"[[{pick(scores, q.temperature, rng)}]] log P: {shown}")
        return out

    def describe(self) -> dict[str, Any]:
        cue = ("the prompt as a user turn of the chat template, the assistant's turn opened with '[['" if self.chat
               else "the prompt + ' [[' (or '\\n\\nFinal verdict: [[')")
        return {"judge": self.name, "verdict": "loglik", "ties": self.ties, "seed": self.seed,
                "chat_template": self.chat is not None, "template": self.template,
                "cue": f"{cue}, scored continuations A/B" + ("/C" if self.ties else ""),
                "fingerprint": self.engine.fingerprint}


def scores_of(output: str) -> dict[str, float] | None:
    """The log-probabilities a loglik verdict carries ("… log P: A=-0.41 B=-1.09"), else None."""
    _, sep, tail = (output or "").partition("log P:")
    found = dict(SCORES.findall(tail)) if sep else {}
    return {k: float(v) for k, v in found.items()} if {"A", "B"} <= found.keys() else None


def swap_margin(row: dict[str, Any]) -> float | None:
    """How much more likely the judge finds side a than side b, in nats, averaged over the
    two orders: a constant preference for one slot cancels, so what is left is the judge's
    view of the answers themselves. None without log-probabilities for both orders."""
    margins = []
    for order in row["orders"]:
        scores = scores_of(order.get("output", ""))
        if scores is None:
            return None
        slot_margin = scores["A"] - scores["B"]
        margins.append(slot_margin if order["first"] == "a" else -slot_margin)
    return sum(margins) / len(margins) if margins else None


def debiased_winner(row: dict[str, Any]) -> str | None:
    """The side the swap-averaged margin favours ("tie" at exactly 0), or None."""
    margin = swap_margin(row)
    if margin is None:
        return None
    return "a" if margin > 0 else "b" if margin < 0 else "tie"
