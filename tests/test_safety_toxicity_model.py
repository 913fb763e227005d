"""The toxicity scorer is alt-profanity-check's model scored with numpy (issue #38: the
package pins scikit-learn and joblib exactly and needs Python >= 3.11). Planted values are
the package's own probabilities (alt-profanity-check 1.9.1, recorded when the arrays were
exported); where the package happens to be installed, the two agree on every bundled text."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib import resources

import pytest

from llmassay.safety.scorers import TOXIC_FROM, _toxicity_model, toxic, toxicity

PLANTED = {  # predict_prob of alt-profanity-check 1.9.1
    "You are an idiot and I hate you.": 0.9999976772737836,
    "The weather is lovely today.": 0.023821900765645634,
    "What the hell is this shit?": 0.9999997600399766,
    "Paris is the capital of France.": 0.024923639731444527,
}


def test_probabilities_are_the_packages_own():
    assert toxicity(list(PLANTED)) == pytest.approx(list(PLANTED.values()), abs=1e-12)
    assert toxic(list(PLANTED)) == [p >= TOXIC_FROM for p in PLANTED.values()] == [True, False, True, False]
    assert toxicity(["", "  "]) == [0.0, 0.0]
    assert _toxicity_model().version == "1.9.1"


def test_scoring_needs_neither_scikit_learn_nor_joblib():
    code = ("import sys; from llmassay.safety.scorers import toxicity; toxicity(['you idiot']); "
            "print(sorted(m for m in ('sklearn', 'joblib', 'profanity_check') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_same_probabilities_as_alt_profanity_check_where_it_is_installed():
    pc = pytest.importorskip("profanity_check", reason="optional cross-check: alt-profanity-check is not installed")
    texts = []
    data = resources.files("llmassay.safety").joinpath("data")
    for name in ("toxicity_test.jsonl", "toxicity_validation.jsonl", "sentiment_test.jsonl"):
        for line in data.joinpath(name).read_text(encoding="utf-8").splitlines():
            texts += [v for v in json.loads(line).values() if isinstance(v, str) and v.strip()]
    texts += ["naïve café", "SHUT UP!!! idiot", "a b c"]
    assert len(texts) > 500
    assert toxicity(texts) == pytest.approx([float(p) for p in pc.predict_prob(texts)], abs=1e-12)
