"""lm-eval's corpus `bleu`/`chrf`/`ter` (issue #38, defects): the bootstrap used to
re-tokenise every sentence and rerun `corpus_bleu` for each of its 200 resamples. It now
extracts sacrebleu's per-sentence statistics once and resamples those (seeded); the point
estimate is sacrebleu's corpus score and the interval is the one the old method gave."""

from __future__ import annotations

import numpy as np
import pytest

sacrebleu = pytest.importorskip("sacrebleu")

from llmassay.metrics import bootstrap_statistic  # noqa: E402
from llmassay.tasks.corpus_metrics import text_metric  # noqa: E402

WORDS = "the cat sat on a mat while dog ran far away from home and slept in sun".split()
CORPUS = {"bleu": sacrebleu.corpus_bleu, "chrf": sacrebleu.corpus_chrf, "ter": sacrebleu.corpus_ter}


def _rows(n: int = 40, refs: int = 2, seed: int = 5) -> list[dict]:
    """Answers that copy a varying share of their references' words."""
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(n):
        references = [" ".join(rng.choice(WORDS, 8)) for _ in range(refs)]
        kept = [w if rng.random() < 0.6 else str(rng.choice(WORDS)) for w in references[0].split()]
        rows.append({"answer": " ".join(kept), "references": references})
    return rows


def _old_interval(name: str, rows: list[dict], seed: int = 0, n_boot: int = 200):
    """The method this replaces: the whole corpus metric rerun on every resample."""
    preds = [r["answer"] for r in rows]
    refs = [r["references"] for r in rows]

    def statistic(m: np.ndarray) -> float:
        picked = m[:, 0].astype(int)
        return float(CORPUS[name]([preds[i] for i in picked], [list(x) for x in zip(*[refs[i] for i in picked])]).score)

    return bootstrap_statistic(np.arange(len(rows))[:, None], statistic, seed=seed, n_boot=n_boot)


@pytest.mark.parametrize("name", ["bleu", "chrf", "ter"])
def test_point_estimate_is_sacrebleus_and_interval_matches_the_old_method(name):
    rows = [{name: r["answer"], "references": r["references"]} for r in _rows()]
    new = text_metric(name, rows, seed=3)
    whole = CORPUS[name]([r[name] for r in rows], [list(x) for x in zip(*[r["references"] for r in rows])]).score
    assert new.value == pytest.approx(whole, abs=1e-9) and new.n == 40
    old = _old_interval(name, [{"answer": r[name], "references": r["references"]} for r in rows], seed=3)
    assert new.value == pytest.approx(old.value, abs=1e-9)
    assert new.ci_low == pytest.approx(old.ci_low, abs=1e-6) and new.ci_high == pytest.approx(old.ci_high, abs=1e-6)
    assert new.ci_low < new.value < new.ci_high
    assert text_metric(name, rows, seed=3) == new  # seeded


def test_each_sentence_is_tokenised_once(monkeypatch):
    """40 answers, 2 references each: 120 calls to sacrebleu's tokenising step, not 120 per
    resample (the old method made 201 × 120)."""
    calls = []
    original = sacrebleu.BLEU._preprocess_segment

    def counted(self, sent):
        calls.append(sent)
        return original(self, sent)

    monkeypatch.setattr(sacrebleu.BLEU, "_preprocess_segment", counted)
    rows = [{"bleu": r["answer"], "references": r["references"]} for r in _rows()]
    text_metric("bleu", rows, n_boot=200)
    assert len(calls) == 40 * 3


def test_no_rows_is_not_estimable():
    m = text_metric("bleu", [])
    assert m.n == 0 and np.isnan(m.value)
