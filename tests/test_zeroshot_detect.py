"""Zero-shot detectors (likelihood, log-rank, Fast-DetectGPT) recover planted separations,
and their statistics come out of real logits exactly."""

from __future__ import annotations

import math

import numpy as np
import pytest

from fakes import ScriptedBackend, ToyLMBackend
from llmassay.backends.token_stats import TokenStatsRequest, logit_stats
from llmassay.engine.cache import RequestCache
from llmassay.engine.engine import Engine
from llmassay.types import LlmassayError, LoglikelihoodRequest
from llmassay.watermark.zeroshot import BASELINES, auroc_metric, fast_detectgpt, log_rank, zero_shot_scores

LN2, LN3 = math.log(2), math.log(3)


def test_statistics_and_criterion_by_hand():
    # p = (1/2, 1/4, 1/4), observed the mode: log p = −ln2, μ = −1.5 ln2, σ² = 0.25 ln²2, rank 1
    # p = (1/3, 1/3, 1/3), observed token 1: log p = μ = −ln3, σ² = 0, rank 1 (ties count best)
    # p = (1/2, 1/2, 0) (a −inf logit), observed token 1: log p = μ = −ln2, σ² = 0, rank 1
    # p = (1/2, 1/4, 1/4), observed token 2: log p = −2 ln2, rank 2
    with np.errstate(divide="ignore"):
        logits = np.log([[0.5, 0.25, 0.25], [1, 1, 1], [1, 1, 0], [0.5, 0.25, 0.25]]) + 7.0  # shift: softmax ignores it
    lp, mu, var, rank = logit_stats(logits, [0, 1, 1, 2])
    assert lp == pytest.approx([-LN2, -LN3, -LN2, -2 * LN2])
    assert mu == pytest.approx([-1.5 * LN2, -LN3, -LN2, -1.5 * LN2])
    assert var == pytest.approx([0.25 * LN2**2, 0, 0, 0.25 * LN2**2], abs=1e-12)
    assert list(rank) == [1, 1, 1, 2]

    from llmassay.backends.token_stats import StatsAccumulator

    acc = StatsAccumulator([0, 1, 1])
    acc.add(logits[:2])  # in pieces, as a backend decodes
    acc.add(logits[2:3])
    stats = acc.result(1)
    # Σ(log p − μ) = 0.5 ln2, Σσ² = 0.25 ln²2 → criterion 0.5 ln2 / 0.5 ln2 = 1
    assert fast_detectgpt(stats) == pytest.approx(1.0)
    assert log_rank(stats) == 0.0
    acc = StatsAccumulator([0, 2])
    acc.add(logits[[0, 3]])
    two = acc.result(1)
    assert fast_detectgpt(two) == pytest.approx(0.0, abs=1e-12)  # +0.5 ln2 − 0.5 ln2
    assert log_rank(two) == pytest.approx(-math.log(2) / 2)


def _texts(lm: ToyLMBackend, how: str, n: int, seed: int) -> list[str]:
    return [lm.write(40, how, seed * 10_000 + i) for i in range(n)]


def test_mode_text_against_tail_text_separates_perfectly(tmp_path):
    lm = ToyLMBackend()
    model, human = _texts(lm, "mode", 40, 1), _texts(lm, "tail", 40, 2)
    engine = Engine(lm, RequestCache(tmp_path / "c.sqlite"))
    scores = zero_shot_scores(engine, model + human, BASELINES)
    for name in BASELINES:
        m = auroc_metric(scores[name][:40], scores[name][40:])
        assert m.value == 1.0 and m.ci_low == 1.0 and m.n == 80, name
    assert min(scores["fastdetectgpt"][:40]) > 2 > 0 > max(scores["fastdetectgpt"][40:])
    # the second pass is the cache's, and the same numbers
    again = zero_shot_scores(engine, model + human, BASELINES)
    assert again == scores and engine.stats.cache_hits == engine.stats.unique // 2


def test_texts_with_the_same_statistics_are_not_told_apart():
    """Two sets sampled from the model itself: Fast-DetectGPT's criterion is standardised,
    so it is ≈ N(0, 1) on each, and the AUROC's CI covers 0.5."""
    lm = ToyLMBackend()
    a, b = _texts(lm, "sample", 150, 5), _texts(lm, "sample", 150, 6)
    scores = zero_shot_scores(Engine(lm), a + b, BASELINES)
    crit = np.array(scores["fastdetectgpt"])
    assert abs(crit.mean()) < 0.15 and 0.85 < crit.std() < 1.15
    for name in BASELINES:
        m = auroc_metric(scores[name][:150], scores[name][150:], seed=0)
        assert m.ci_low < 0.5 < m.ci_high and abs(m.value - 0.5) < 0.08, name
    # and the model's own samples still stand apart from tail text
    tail = _texts(lm, "tail", 150, 7)
    sep = zero_shot_scores(Engine(lm), a + tail, ["fastdetectgpt"])["fastdetectgpt"]
    assert auroc_metric(sep[:150], sep[150:]).value > 0.99


def test_likelihood_alone_needs_only_scoring_and_the_others_say_which_backends_can():
    backend = ScriptedBackend(lambda context, continuation: -2.0 * len(continuation.split()), lambda req: "")
    assert zero_shot_scores(Engine(backend), [" a b c"], ["likelihood"]) == {"likelihood": [-2.0]}
    with pytest.raises(LlmassayError) as err:
        zero_shot_scores(Engine(backend), [" a b c"], ["likelihood", "fastdetectgpt"])
    assert "not supported by this backend" in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(LlmassayError, match="unknown"):
        zero_shot_scores(Engine(backend), [" a"], ["detectgpt"])


def test_a_request_pairs_text_like_a_loglikelihood_request():
    lm = ToyLMBackend()
    text = lm.write(12, "sample", 0)
    stats = Engine(lm).token_stats([TokenStatsRequest("", text)])[0]
    ll = Engine(lm).loglikelihood([LoglikelihoodRequest("", text)])[0]
    assert stats.n_tokens == 12 and sum(stats.token_logprobs) == pytest.approx(ll.logprob)
    assert all(r >= 1 for r in stats.ranks) and all(v >= 0 for v in stats.logprob_variances)


@pytest.mark.slow
def test_llamacpp_statistics_match_its_scores(smollm2):
    texts = [" The quick brown fox jumps over the lazy dog.", " It was a bright cold day in April."]
    scored = smollm2.loglikelihood([LoglikelihoodRequest("", t) for t in texts])
    stats = smollm2.token_stats([TokenStatsRequest("", t) for t in texts])
    for ll, s in zip(scored, stats):
        assert s.n_tokens == ll.n_tokens
        assert s.token_logprobs == pytest.approx(ll.token_logprobs, abs=1e-9)
        assert all(v >= 0 for v in s.logprob_variances) and all(m < 0 for m in s.expected_logprobs)
        # the mode's log p is at least the mean log p
        assert all(lp >= mu for lp, mu, r in zip(s.token_logprobs, s.expected_logprobs, s.ranks) if r == 1)
        assert 1 in s.ranks and max(s.ranks) > 1


def test_token_windows_on_a_backend_without_them_are_one_line():
    """Rolling windows (lm-eval's loglikelihood_rolling) share the optional-capability check."""
    from llmassay.engine.rolling import TokenLoglikelihoodRequest

    backend = ScriptedBackend(lambda context, continuation: 0.0, lambda req: "")
    with pytest.raises(LlmassayError) as err:
        Engine(backend).loglikelihood_tokens([TokenLoglikelihoodRequest((1,), (2, 3))])
    assert "token-window log-likelihoods" in str(err.value) and "\n" not in str(err.value)
