"""CounterFact's scores for one edit from log-likelihoods alone (Meng et al. 2022, §4.2 and
the released `compute_rewrite_quality_counterfact`): an object is compared by its mean
log-probability per token after the prompt, as ROME's evaluation does.

* efficacy: P(new) > P(old) on the edit prompt;
* paraphrase: the share of rewordings of the prompt where P(new) > P(old);
* neighbourhood: the share of prompts about other subjects (or other facts of the same
  subject) where the true object still beats the new one, P(true) > P(new).

* fluency (CounterFact's "generation entropy", §4.2): free greedy generations of
  `fluency_tokens` tokens from the edit prompt and its rewordings, each scored by ROME's
  `n_gram_entropy` (below); the edit's mean. A model an edit broke repeats itself and scores
  lower. Averaged over edits with a bootstrap CI; before vs after is paired by edit.

Each edit gives one row; the proportions over edits get Wilson intervals (the per-edit
shares of paraphrase and neighbourhood prompts enter as fractions: the unit is the edit).
Nothing here calls a model: `requests(edit)` says what to score and `row(edit, scores)`
reads the answers, so a probe (through the engine) and a command (on a backend) share it.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

from llmassay.editing.edits import Edit
from llmassay.metrics import bootstrap_mean, paired_gap, proportion
from llmassay.types import Generation, GenerateRequest, LoglikelihoodRequest, LoglikelihoodResult, Metric

METRICS = ("efficacy", "paraphrase", "neighbourhood")
FLUENCY_TOKENS = 50
NGRAM_WEIGHTS = ((2, 2 / 3), (3, 4 / 3))  # ROME's compute_n_gram_entropy: ns [2, 3], weights [2/3, 4/3]
# Words, "n't" and "'s"-style clitics apart, each other non-space character alone: close to the
# Penn Treebank split of nltk.word_tokenize (which ROME uses) without the nltk dependency.
_WORD = re.compile(r"\w+(?=n't\b)|n't\b|'\w+|\w+(?:-\w+)*|[^\w\s]")


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


def words(text: str) -> list[str]:
    return _WORD.findall(text)


def n_gram_entropy(text: str) -> float:
    """ROME's `compute_n_gram_entropy` (experiments/py/eval_utils_counterfact.py): the
    entropy in bits of the text's word bigram and trigram frequencies, weighted 2/3 and 4/3,
    averaged (so H₂/3 + 2·H₃/3); a text with no n-grams of a size contributes 0 for it."""
    tokens = words(text)
    parts = []
    for n, weight in NGRAM_WEIGHTS:
        counts = Counter(zip(*(tokens[i:] for i in range(n))))
        total = sum(counts.values())
        parts.append(weight * -sum(c / total * math.log2(c / total) for c in counts.values()))
    return sum(parts) / len(parts)


def generation_requests(edit: Edit, max_tokens: int = FLUENCY_TOKENS) -> list[GenerateRequest]:
    """Greedy free generations from the edit prompt and each rewording (all name the subject)."""
    return [GenerateRequest(prompt=p.replace("{}", edit.subject), max_tokens=max_tokens)
            for p in dict.fromkeys((edit.prompt, *edit.paraphrases))]


def score_edits(edits: Sequence[Edit],
                loglikelihood: Callable[[list[LoglikelihoodRequest]], list[LoglikelihoodResult]],
                generate: Callable[[list[GenerateRequest]], list[Generation]] | None = None,
                fluency_tokens: int = FLUENCY_TOKENS) -> list[dict[str, Any]]:
    """Rows for every edit, with one call to `loglikelihood` for all their requests (and, given
    `generate` and fluency_tokens > 0, one call to it for the fluency generations)."""
    reqs = list(dict.fromkeys(r for e in edits for r in requests(e)))
    scores = dict(zip(reqs, loglikelihood(reqs)))
    rows = [row(e, scores) for e in edits]
    if generate is None or fluency_tokens <= 0:
        return rows
    gens = list(dict.fromkeys(g for e in edits for g in generation_requests(e, fluency_tokens)))
    texts = {g: out.text for g, out in zip(gens, generate(gens))}
    for r, e in zip(rows, edits):
        mine = [texts[g] for g in generation_requests(e, fluency_tokens)]
        r["fluency"] = sum(n_gram_entropy(t) for t in mine) / len(mine)
        r["generations"] = mine
    return rows


def summarise(rows: Sequence[dict[str, Any]]) -> dict[str, Metric]:
    """Each score as a proportion over edits with its Wilson interval; fluency (when measured)
    as the mean over edits with a bootstrap CI."""
    out = {m: proportion([r[m] for r in rows if r[m] is not None]) for m in METRICS}
    fluency = [r["fluency"] for r in rows if r.get("fluency") is not None]
    if fluency:
        out["fluency"] = bootstrap_mean(fluency)
    return out


def fluency_change(before: Sequence[dict[str, Any]], after: Sequence[dict[str, Any]]) -> Metric | None:
    """After − before fluency, paired by edit (same prompts), with a bootstrap CI over edits."""
    pairs = [(a["fluency"], b["fluency"]) for b, a in zip(before, after)
             if a.get("fluency") is not None and b.get("fluency") is not None]
    return bootstrap_mean([a - b for a, b in pairs]) if pairs else None


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
