"""lm-eval's corpus-level metrics: `f1` and `mcc` over (gold, pick) pairs, `perplexity`.

They are not means of per-item scores, so their interval is a percentile bootstrap over
items (`metrics.bootstrap_statistic`). lm-eval computes them with scikit-learn
(`f1_score`, binary; `matthews_corrcoef`); here they are read off the confusion matrix,
which is the same formula (checked against scikit-learn in the tests) and fast enough to
recompute for every bootstrap resample without the dependency.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from llmassay.metrics import bootstrap_mean, bootstrap_statistic, proportion
from llmassay.types import LlmassayError, Metric

CORPUS_METRICS = ("f1", "mcc")


def _confusion(pairs: np.ndarray, k: int) -> np.ndarray:
    return np.bincount(pairs[:, 0].astype(int) * k + pairs[:, 1].astype(int), minlength=k * k).reshape(k, k)


def f1(pairs: np.ndarray, k: int = 2) -> float:
    """Binary F1 of label 1 (scikit-learn's `f1_score` default); 0 when undefined."""
    c = _confusion(pairs, max(k, 2))
    tp = c[1, 1]
    fp, fn = c[:, 1].sum() - tp, c[1, :].sum() - tp
    return float(2 * tp / (2 * tp + fp + fn)) if tp + fp + fn else 0.0


def mcc(pairs: np.ndarray, k: int = 2) -> float:
    """Matthews correlation for any number of classes (Gorodkin's R_K, as scikit-learn)."""
    c = _confusion(pairs, k).astype(float)
    t, p, correct, n = c.sum(axis=1), c.sum(axis=0), np.trace(c), c.sum()
    denominator = np.sqrt((n * n - p @ p) * (n * n - t @ t))
    return float((correct * n - t @ p) / denominator) if denominator else 0.0


def corpus_metric(name: str, rows: list[dict[str, Any]], seed: int = 0) -> Metric:
    """`name` over the rows' (target, pred) pairs, with a bootstrap CI over items."""
    pairs = np.array([[r["target"], r["pred"]] for r in rows if r.get("pred") is not None], dtype=int)
    k = int(pairs.max()) + 1 if len(pairs) else 2
    fn = f1 if name == "f1" else mcc
    return bootstrap_statistic(pairs, lambda m: fn(m.astype(int), k), seed=seed)


def perplexity(rows: list[dict[str, Any]], seed: int = 0) -> Metric:
    """lm-eval's `perplexity` aggregation, exp(-mean log-likelihood), with a bootstrap CI."""
    lls = np.array([[r["loglikelihood"]] for r in rows], dtype=float)
    return bootstrap_statistic(lls, lambda m: float(np.exp(-m[:, 0].mean())), seed=seed)


TEXT_LOWER_IS_BETTER = ("ter",)


def text_metric(name: str, rows: list[dict[str, Any]], seed: int = 0, n_boot: int = 200) -> Metric:
    """sacrebleu's corpus `bleu`/`chrf`/`ter` of the rows' answers (`rows[name]`) against
    their references, as lm-eval aggregates them, with a bootstrap CI over items.

    Each sentence is tokenised once: sacrebleu's own per-sentence sufficient statistics
    (n-gram matches and lengths, character n-grams, edits) are extracted once and each
    resample sums the picked rows and scores them, as sacrebleu's `--confidence` does, but
    seeded by `seed` (sacrebleu's reads the SACREBLEU_SEED variable)."""
    try:
        import sacrebleu
    except ImportError:
        raise LlmassayError(f"metric '{name}' needs sacrebleu: pip install 'llmassay[lmeval]'") from None
    metric = {"bleu": sacrebleu.BLEU, "chrf": sacrebleu.CHRF, "ter": sacrebleu.TER}[name.split(",")[0]]()
    preds = [str(r[name]) for r in rows]
    refs = [list(r["references"]) for r in rows]
    if len({len(r) for r in refs}) > 1:
        raise LlmassayError(f"metric '{name}': every item needs the same number of references (sacrebleu)")
    if not rows:
        return Metric(float("nan"), float("nan"), float("nan"), 0, None, "bootstrap")
    stats = np.array(metric._extract_corpus_statistics(preds, [list(x) for x in zip(*refs)]), dtype=float)
    return bootstrap_statistic(stats, lambda m: float(metric._compute_score_from_stats(m.sum(axis=0)).score),
                               seed=seed, n_boot=n_boot)


def custom_aggregate(name: str, aggregate: Any, rows: list[dict[str, Any]], seed: int = 0, n_boot: int = 200) -> Metric:
    """A task's own `aggregation: !function` over the rows' (gold, answer) items, as lm-eval
    calls it, with a bootstrap CI over items (the function is the task's trusted code)."""
    items = [r[name] for r in rows]

    def statistic(m: np.ndarray) -> float:
        try:
            return float(aggregate([items[i] for i in m[:, 0].astype(int)]))
        except Exception as exc:  # the task's own code: one line naming it
            raise LlmassayError(f"metric '{name}': the task's aggregation failed: {type(exc).__name__}: {exc}") from None

    return bootstrap_statistic(np.arange(len(items))[:, None], statistic, seed=seed, n_boot=n_boot)


def item_mean(values: list[Any]) -> Metric:
    """A mean of per-item scores: Wilson for 0/1 scores, a bootstrap for partial credit
    (a task's own `process_results` may give any number)."""
    if all(v in (0, 1) for v in values):
        return proportion([bool(v) for v in values])
    return bootstrap_mean([float(v) for v in values])
