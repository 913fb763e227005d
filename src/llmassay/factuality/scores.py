"""Corpus figures over checked answers, shared by the probe and `llmassay factcheck`.

Each answer has its verified facts (`counts`: supported / contradicted / not_in_kb) and, on
the free-text path, the sentences no field pattern read (`unverified`). Those sentences are
an outcome of their own: `fact_precision` is supported ÷ the facts that were read, and
`unverified` (unread sentences ÷ read facts + unread sentences) stands beside it, so a
precision of 1/1 on an answer of three sentences shows that two were never checked. An
answer abstains only when it holds neither a fact nor an unread sentence (a sentence that
only says "I don't know" is neither). The unit of every CI is the answer.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from llmassay.metrics import bootstrap_mean, proportion
from llmassay.types import Metric


def facts_of(entry: dict[str, Any]) -> int:
    return sum(entry["counts"].values())


def unread_of(entry: dict[str, Any]) -> int:
    return len(entry.get("unverified") or ())


def unverified_share(entry: dict[str, Any]) -> float | None:
    """Unread sentences ÷ all outcomes of the answer; None when it abstained."""
    total = facts_of(entry) + unread_of(entry)
    return unread_of(entry) / total if total else None


def answer_metrics(entries: Sequence[dict[str, Any]], seed: int = 0) -> dict[str, Metric]:
    """fact_precision, contradicted_rate and facts_per_answer over answers with a read fact;
    unverified over answers that did not abstain (where any answer can leave a sentence
    unread, i.e. the free path); abstention over all."""
    answered = [e["counts"] for e in entries if facts_of(e)]
    out = {
        "fact_precision": bootstrap_mean([c["supported"] / sum(c.values()) for c in answered], seed),
        "contradicted_rate": bootstrap_mean([c["contradicted"] / sum(c.values()) for c in answered], seed),
        "facts_per_answer": bootstrap_mean([sum(c.values()) for c in answered], seed),
    }
    if any("unverified" in e for e in entries):
        shares = [s for e in entries if (s := unverified_share(e)) is not None]
        out["unverified"] = bootstrap_mean(shares, seed)
    out["abstention"] = proportion([not facts_of(e) and not unread_of(e) for e in entries])
    return out
