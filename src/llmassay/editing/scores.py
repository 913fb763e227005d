"""CounterFact's scores for one edit from log-likelihoods alone (Meng et al. 2022, §4.2 and
the released `compute_rewrite_quality_counterfact`): an object is compared by its mean
log-probability per token after the prompt, as ROME's evaluation does.

* efficacy: P(new) > P(old) on the edit prompt;
* paraphrase: the share of rewordings of the prompt where P(new) > P(old);
* neighbourhood: the share of prompts about other subjects (or other facts of the same
  subject) where the true object still beats the new one, P(true) > P(new).

Each edit gives one row; the proportions over edits get Wilson intervals (the per-edit
shares of paraphrase and neighbourhood prompts enter as fractions: the unit is the edit).
Nothing here calls a model: `requests(edit)` says what to score and `row(edit, scores)`
reads the answers, so a probe (through the engine) and a command (on a backend) share it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from llmassay.editing.edits import Edit
from llmassay.metrics import paired_gap, proportion
from llmassay.types import LoglikelihoodRequest, LoglikelihoodResult, Metric

METRICS = ("efficacy", "paraphrase", "neighbourhood")


def _pair(prompt: str, subject: str, obj: str) -> LoglikelihoodRequest:
    return LoglikelihoodRequest(prompt.replace("{}", subject), " " + obj.strip())


def requests(edit: Edit) -> list[LoglikelihoodRequest]:
    """Every (prompt, object) pair the edit's scores need, without repeats."""
    out = [_pair(p, edit.subject, o) for p in (edit.prompt, *edit.paraphrases) for o in (edit.new, edit.old)]
    out += [_pair(n.prompt, edit.subject, o) for n in edit.neighbourhood for o in (n.true, edit.new)]
    return list(dict.fromkeys(out))


def _mean(result: LoglikelihoodResult) -> float:
    return result.logprob / max(result.n_tokens, 1)


def row(edit: Edit, scores: dict[LoglikelihoodRequest, LoglikelihoodResult]) -> dict[str, Any]:
    """One edit's outcome: 0/1 efficacy, paraphrase and neighbourhood shares (None without prompts)."""
    def beats(prompt: str, a: str, b: str) -> bool:
        return _mean(scores[_pair(prompt, edit.subject, a)]) > _mean(scores[_pair(prompt, edit.subject, b)])

    para = [beats(p, edit.new, edit.old) for p in edit.paraphrases]
    neigh = [beats(n.prompt, n.true, edit.new) for n in edit.neighbourhood]
    margin = (_mean(scores[_pair(edit.prompt, edit.subject, edit.new)])
              - _mean(scores[_pair(edit.prompt, edit.subject, edit.old)]))
    return {"id": edit.id, "subject": edit.subject, "old": edit.old, "new": edit.new,
            "efficacy": int(margin > 0), "margin": round(margin, 6),
            "paraphrase": sum(para) / len(para) if para else None,
            "neighbourhood": sum(neigh) / len(neigh) if neigh else None}


def score_edits(edits: Sequence[Edit],
                loglikelihood: Callable[[list[LoglikelihoodRequest]], list[LoglikelihoodResult]]) -> list[dict[str, Any]]:
    """Rows for every edit, with one call to `loglikelihood` for all their requests."""
    reqs = list(dict.fromkeys(r for e in edits for r in requests(e)))
    scores = dict(zip(reqs, loglikelihood(reqs)))
    return [row(e, scores) for e in edits]


def summarise(rows: Sequence[dict[str, Any]]) -> dict[str, Metric]:
    """Each score as a proportion over edits with its Wilson interval."""
    return {m: proportion([r[m] for r in rows if r[m] is not None]) for m in METRICS}


def paired_gaps(first: Sequence[dict[str, Any]], second: Sequence[dict[str, Any]],
                seed: int = 0) -> dict[str, Metric]:
    """first − second for each score, paired by edit (the same edits, in the same order): a
    bootstrap over edits of the per-edit differences (`metrics.paired_gap`); an edit counts
    for a score only where both sides have it."""
    if [r["id"] for r in first] != [r["id"] for r in second]:
        raise ValueError("paired_gaps: the two sides must score the same edits in the same order")
    out = {}
    for m in METRICS:
        both = [(a[m], b[m]) for a, b in zip(first, second) if a[m] is not None and b[m] is not None]
        out[m] = paired_gap([a - b for a, b in both], proportion([a for a, _ in both]),
                            proportion([b for _, b in both]), seed)
    return out


def columns_table(columns: dict[str, Sequence[dict[str, Any]]], seed: int = 0) -> dict[str, Any]:
    """Several ways of answering the same edits side by side (unedited, edited weights,
    unedited + retrieval): each column's scores with Wilson intervals, and every pair's
    paired differences over edits (later column − earlier column)."""
    names = list(columns)
    return {"columns": {k: summarise(v) for k, v in columns.items()},
            "gaps": {f"{b} − {a}": paired_gaps(columns[b], columns[a], seed)
                     for i, a in enumerate(names) for b in names[i + 1:]}}
