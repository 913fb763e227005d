"""Export alt-profanity-check's model (MIT; a TF-IDF vectoriser and five sigmoid-calibrated
linear SVMs, pickled for one exact scikit-learn version) to plain arrays,
src/llmassay/safety/data/toxicity_model.npz, which `llmassay.safety.scorers.toxicity` scores
with numpy alone: the [safety] extra then needs neither scikit-learn nor joblib (which the
package pins exactly) nor Python >= 3.11 (which its current releases need).

    pip install alt-profanity-check==1.9.1 && python scripts/export_toxicity_model.py

Written once per alt-profanity-check release; tests/test_safety_toxicity_model.py checks the
arrays give the package's own probabilities when it is installed.
"""

from __future__ import annotations

import importlib.metadata
import io
from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parent.parent / "src/llmassay/safety/data/toxicity_model.npz"
TOKEN_PATTERN = r"(?u)\b\w\w+\b"  # the scorer hard-codes this (and lower-casing): checked below


def main() -> None:
    from profanity_check import profanity_check as pc

    vec, model = pc.vectorizer, pc.model
    params = vec.get_params()
    assert (params["token_pattern"], params["lowercase"], params["ngram_range"], params["norm"],
            params["use_idf"], params["sublinear_tf"], params["analyzer"], params["strip_accents"],
            params["preprocessor"], params["tokenizer"]) == (TOKEN_PATTERN, True, (1, 1), "l2", True, False,
                                                              "word", None, None, None), params
    assert model.method == "sigmoid" and list(model.classes_) == [0, 1]
    terms = sorted(vec.vocabulary_, key=vec.vocabulary_.get)
    assert [vec.vocabulary_[t] for t in terms] == list(range(len(terms)))
    parts = model.calibrated_classifiers_
    coef = np.stack([c.estimator.coef_.ravel() for c in parts])
    intercept = np.array([float(c.estimator.intercept_[0]) for c in parts])
    a = np.array([float(c.calibrators[0].a_) for c in parts])
    b = np.array([float(c.calibrators[0].b_) for c in parts])
    buf = io.BytesIO()
    np.savez_compressed(buf, terms=np.frombuffer("\n".join(terms).encode("utf-8"), dtype=np.uint8),
                        idf=np.asarray(vec.idf_, dtype=np.float64), coef=coef, intercept=intercept, a=a, b=b,
                        version=np.frombuffer(importlib.metadata.version("alt-profanity-check").encode(), dtype=np.uint8))
    OUT.write_bytes(buf.getvalue())
    print(f"{OUT}: {len(terms)} terms, {len(parts)} calibrated SVMs, {OUT.stat().st_size} bytes")


if __name__ == "__main__":
    main()
