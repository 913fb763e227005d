"""lm-eval's `loglikelihood_rolling` tasks (wikitext, pile): per-document log P and the
weighted aggregations `word_perplexity`, `byte_perplexity`, `bits_per_byte`.

Each document contributes a pair (log-likelihood, weight): its words (`re.split(r"\\s+")`,
lm-eval's `count_words`) or its UTF-8 bytes. The aggregate is a ratio of sums, not a mean
of per-document values, so its interval is a bootstrap over documents.
"""

from __future__ import annotations

import math
import re
from typing import TYPE_CHECKING, Any

import numpy as np

from llmassay.engine.rolling import loglikelihood_rolling
from llmassay.metrics import bootstrap_statistic
from llmassay.types import LlmassayError, Metric

if TYPE_CHECKING:
    from llmassay.engine.engine import Engine
    from llmassay.tasks.loader import Task
    from llmassay.types import Sample

ROLLING_METRICS = ("word_perplexity", "byte_perplexity", "bits_per_byte")
# lm-eval's default aggregation of each (api/metrics.py `register_metric`)
DEFAULT_AGGREGATION = {"word_perplexity": "weighted_perplexity", "byte_perplexity": "weighted_perplexity",
                       "bits_per_byte": "bits_per_byte"}
WEIGHTED_AGGREGATIONS = ("weighted_perplexity", "bits_per_byte")


def _weights(text: str) -> dict[str, int]:
    n_bytes = len(text.encode("utf-8"))
    return {"word_perplexity": len(re.split(r"\s+", text)), "byte_perplexity": n_bytes, "bits_per_byte": n_bytes}


def score_rolling(engine: Engine, task: Task, samples: list[Sample]) -> list[dict[str, Any]]:
    """One row per document: its log-likelihood over lm-eval's windows and, per metric, the
    (log-likelihood, weight) pair lm-eval's `process_results` gives (the task's own, if any)."""
    texts = [str(s.target) for s in samples]
    rows = []
    for s, text, r in zip(samples, texts, loglikelihood_rolling(engine, texts)):
        row: dict[str, Any] = {"id": s.id, "target": text, "loglikelihood": r.logprob, "n_tokens": r.n_tokens,
                               "n_windows": r.n_windows}
        if task.process_results is not None:
            scores = task.custom_scores(s, [r.logprob])
            row.update({k: list(v) if isinstance(v, tuple) else v for k, v in scores.items()})
        else:
            weights = _weights(text)
            row.update({m: [r.logprob, weights[m]] for m in task.metrics})
        rows.append(row)
    return rows


def weighted_metric(name: str, aggregation: str, rows: list[dict[str, Any]], seed: int = 0) -> Metric:
    """lm-eval's `weighted_perplexity` (exp(−Σll/Σw)) or `bits_per_byte` (−Σll/Σw/ln 2) of
    the rows' (ll, weight) pairs, with a bootstrap CI over documents."""
    try:
        pairs = np.array([[float(r[name][0]), float(r[name][1])] for r in rows], dtype=float)
    except (KeyError, TypeError, IndexError, ValueError):
        raise LlmassayError(f"metric '{name}': each item needs a (log-likelihood, weight) pair") from None

    def statistic(m: np.ndarray) -> float:
        mean = m[:, 0].sum() / m[:, 1].sum()
        return float(math.exp(-mean)) if aggregation == "weighted_perplexity" else float(-mean / math.log(2))

    return bootstrap_statistic(pairs, statistic, seed=seed)
