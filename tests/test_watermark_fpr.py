"""The watermark threshold at a chosen false-positive rate (issue #32, item 5): the smallest
green count k with P(G >= k) <= fpr flags a text, so the realised false-positive rate is
exactly that binomial tail. Comparing z > z(k) needed k + 1 green tokens: at fpr 1e-3,
gamma 0.25 and 16 scored tokens, 11 green (p = 2.9e-4) went unflagged and the realised
rate was 3.8e-5. No model: exact enumeration and planted token ids."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.stats import binom

from llmassay.cli import main
from llmassay.watermark import GreenList, WatermarkConfig, detect_ids, flagged, green_needed, z_threshold
from llmassay.watermark.detect import score_green
from llmassay.watermark.tokenizers import Tokenizer


def _realised_fpr(n: int, gamma: float, fpr: float) -> float:
    """P(flagged) over every green count of a text with no watermark (G ~ Binomial(n, gamma))."""
    first = np.ones(n, dtype=bool)
    return sum(binom.pmf(g, n, gamma) for g in range(n + 1)
               if flagged(score_green(np.arange(n) < g, first, gamma), gamma, fpr))


@pytest.mark.parametrize("gamma", [0.25, 0.5])
@pytest.mark.parametrize("fpr", [1e-3, 1e-2])
def test_realised_false_positive_rate_is_the_exact_binomial_tail(gamma, fpr):
    for n in (8, 16, 25, 50, 100, 200, 1000):
        k = green_needed(n, gamma, fpr)
        realised = _realised_fpr(n, gamma, fpr)
        assert realised == pytest.approx(binom.sf(k - 1, n, gamma), rel=1e-9, abs=1e-300)
        assert realised <= fpr < binom.sf(k - 2, n, gamma)  # one green token fewer would exceed fpr
        if k <= n:  # z of exactly k green tokens reaches the threshold; one fewer does not
            assert z_threshold(n, gamma, fpr) == pytest.approx((k - gamma * n) / np.sqrt(n * gamma * (1 - gamma)))


def test_the_issue_numbers():
    assert green_needed(16, 0.25, 1e-3) == 11 and binom.sf(10, 16, 0.25) == pytest.approx(2.9e-4, rel=0.05)
    assert _realised_fpr(16, 0.25, 1e-3) == pytest.approx(2.9e-4, rel=0.05)  # was 3.8e-5
    assert _realised_fpr(100, 0.25, 1e-3) > 5e-4  # was 3.2e-4
    assert green_needed(4, 0.25, 1e-3) == 5 and z_threshold(4, 0.25, 1e-3) == float("inf")  # 4 green: p = 3.9e-3


def _exact_green(cfg: WatermarkConfig, flags: list[bool], vocab: int = 4096, seed: int = 0) -> list[int]:
    """Token ids whose scored tokens are green exactly where `flags` says (scheme prev)."""
    rng = np.random.default_rng(seed)
    green = GreenList(cfg)
    ids = [int(rng.integers(0, vocab))]
    for want in flags:
        ids.append(int(rng.choice(np.flatnonzero(green.mask(np.array(ids), vocab) == want))))
    return ids


@pytest.mark.parametrize(("n_green", "marked"), [(10, False), (11, True)])
def test_cli_flags_a_text_with_exactly_the_needed_green_count(tmp_path, monkeypatch, n_green, marked):
    tok = Tokenizer(lambda text: [int(w[1:]) for w in text.split()], 49152, "fake/words")
    monkeypatch.setattr("llmassay.watermark.tokenizers.load_tokenizer", lambda spec: tok)
    cfg = WatermarkConfig("secret", scheme="prev")
    ids = _exact_green(cfg, [True] * n_green + [False] * (16 - n_green))
    d = detect_ids(ids, cfg)
    assert (d.n_scored, d.green) == (16, n_green)  # 16 distinct (context, token) pairs
    src, out = tmp_path / "t.jsonl", tmp_path / "o.json"
    src.write_text(json.dumps({"text": " ".join(f"w{i}" for i in ids)}) + "\n")
    assert main(["watermark", "detect", str(src), "--key", "secret", "--tokenizer", "x/y", "--scheme", "prev",
                 "--fpr", "1e-3", "--output", str(out)]) == 0
    (row,) = json.loads(out.read_text())["texts"]
    assert row["watermarked"] is marked and (row["z"] >= row["threshold_z"]) is marked
