"""The watermark's green list, z-test and attacks, proved on planted truth (no model)."""

from __future__ import annotations

import hashlib
import hmac
import math
import struct
import subprocess
import sys

import numpy as np
import pytest

from llmassay.types import LlmassayError
from llmassay.watermark import GreenList, WatermarkConfig, detect_ids, predicted_z, tokens_needed, z_threshold
from llmassay.watermark.attacks import delete, mix, substitute
from llmassay.watermark.scheme import context_seeds

from fakes import watermark_planted as planted

MASK = 2**64 - 1
V = 49152


def reference_green(key: str, context: list[int], token: int, gamma: float) -> bool:
    """The scheme's definition in plain Python integers, independent of the numpy code."""
    msg = b"llmassay-wm/1" + struct.pack(f"<{len(context)}I", *context)
    x = int.from_bytes(hmac.new(key.encode(), msg, hashlib.sha256).digest()[:8], "little")
    x ^= token * 0x9E3779B97F4A7C15 & MASK
    x ^= x >> 30
    x = x * 0xBF58476D1CE4E5B9 & MASK
    x ^= x >> 27
    x = x * 0x94D049BB133111EB & MASK
    x ^= x >> 31
    return x < int(gamma * 2**64)


def test_green_list_is_a_fixed_vector_equal_to_the_definition():
    # Pinned: a change here breaks detection of every text watermarked before it.
    seeds = context_seeds("llmassay", np.array([[1, 2, 3], [0, 0, 0], [49151, 7, 42]]))
    assert seeds.tolist() == [12165736585724646822, 11809984976603393015, 6302059613295697983]
    mask = GreenList(WatermarkConfig("llmassay")).mask(np.array([9, 1, 2, 3]), 64)
    assert np.flatnonzero(mask).tolist() == [0, 6, 7, 10, 11, 17, 23, 25, 26, 39, 43, 52, 58]
    assert [t for t in range(64) if reference_green("llmassay", [1, 2, 3], t, 0.25)] == np.flatnonzero(mask).tolist()
    prev = GreenList(WatermarkConfig("llmassay", scheme="prev")).mask(np.array([5]), 64)
    assert np.flatnonzero(prev).tolist() == [2, 6, 8, 9, 18, 32, 34, 41, 42, 45, 52, 54, 56, 63]


def test_green_list_is_the_same_in_another_process():
    code = (
        "import numpy as np; from llmassay.watermark import GreenList, WatermarkConfig;"
        "print(np.flatnonzero(GreenList(WatermarkConfig('k', gamma=0.5)).mask(np.array([3, 4, 5]), 4096)).sum())"
    )
    here = np.flatnonzero(GreenList(WatermarkConfig("k", gamma=0.5)).mask(np.array([3, 4, 5]), 4096)).sum()
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={"PYTHONHASHSEED": "123", "PYTHONPATH": ":".join(sys.path)})
    assert int(out.stdout) == here


@pytest.mark.parametrize("scheme", ["prev", "selfhash"])
def test_always_green_text_detects_at_the_predicted_z(scheme):
    cfg = WatermarkConfig("key-1", scheme=scheme)
    d = detect_ids(planted(cfg, 200, 1.0), cfg)
    assert d.n_scored == 200 and d.green == 200
    assert d.z == pytest.approx(math.sqrt(200) * 0.75 / math.sqrt(0.25 * 0.75))  # 24.49
    assert d.p_value < 1e-100
    other = detect_ids(planted(cfg, 200, 1.0), WatermarkConfig("key-2", scheme=scheme))
    assert abs(other.z) < 4  # another key sees no watermark


def test_partly_green_text_follows_the_predicted_curve():
    cfg = WatermarkConfig("key-1", scheme="prev")
    ids = planted(cfg, 400, 0.5, seed=3)
    d = detect_ids(ids, cfg)
    assert d.green_fraction == pytest.approx(0.5, abs=0.06)
    assert d.z == pytest.approx(predicted_z(d.green_fraction, d.n_scored, 0.25))
    assert d.z == pytest.approx(predicted_z(0.5, 400, 0.25), abs=2.5)  # 11.5 planted
    assert tokens_needed(0.5, 0.25) == pytest.approx(16 * 0.1875 / 0.0625)  # 48 tokens reach z = 4


def test_random_text_gives_standard_normal_z_over_many_keys():
    ids = np.random.default_rng(7).integers(0, V, 300)
    zs = np.array([detect_ids(ids, WatermarkConfig(f"k{i}")).z for i in range(300)])
    assert abs(zs.mean()) < 0.2 and abs(zs.std() - 1) < 0.13
    assert 0.005 < (zs > 2).mean() < 0.05  # 0.023 under N(0, 1)


def test_repeated_pairs_are_counted_once_and_both_ways_reported():
    cfg = WatermarkConfig("key-1", scheme="prev")
    ngram = planted(cfg, 6, 1.0, seed=1)  # 7 tokens, all green after the first
    text = (ngram * 40)[: 7 * 40]  # the same 6 green pairs, and the red/green wrap pair, 40 times
    d = detect_ids(text, cfg)
    assert d.n_scored == 7 and d.n_scored_all == len(text) - 1
    assert d.z_all > 20 and d.z < 6
    assert d.green >= 6 and d.green_all >= 6 * 40


def test_threshold_for_a_chosen_fpr_is_exact_binomial():
    from scipy.stats import binom

    for n in (10, 50, 200):
        z = z_threshold(n, 0.25, 1e-3)
        k = math.ceil(0.25 * n + z * math.sqrt(n * 0.1875) - 1e-9)
        assert binom.sf(k - 1, n, 0.25) <= 1e-3 < binom.sf(k - 2, n, 0.25)
    assert z_threshold(10_000, 0.25, 3.17e-5) == pytest.approx(4.0, abs=0.1)  # the normal limit
    assert z_threshold(16, 0.25, 1e-3) > z_threshold(1024, 0.25, 1e-3)  # short texts need more


def test_config_errors_are_one_line():
    for bad in ("key=k,gamma=1.5", "key=,gamma=0.2", "key=k,scheme=minhash", "key=k,colour=red", "key=k,h=x"):
        with pytest.raises(LlmassayError) as err:
            WatermarkConfig.from_spec(bad)
        assert "\n" not in str(err.value)
    cfg = WatermarkConfig("k", gamma=0.5, delta=1.5, scheme="prev")
    assert WatermarkConfig.from_spec(cfg.spec()) == cfg


def test_bias_adds_delta_to_green_tokens_only():
    cfg = WatermarkConfig("k", delta=2.0)
    green = GreenList(cfg)
    ids = np.array([4, 5, 6])
    scores = np.zeros(1000, dtype=np.float32)
    out = green.bias(ids, scores)
    mask = green.mask(ids, 1000)
    assert set(out[mask]) == {2.0} and set(out[~mask]) == {0.0}
    assert green.bias(ids[:1], scores) is scores  # too little context: untouched


def test_attacks_edit_the_planted_share():
    ids = list(range(100))
    sub = substitute(ids, 0.2, 10**6, seed=1)
    assert len(sub) == 100 and sum(a != b for a, b in zip(ids, sub)) == 20
    assert substitute(ids, 0.2, 10**6, seed=1) == sub  # seeded
    assert len(delete(ids, 0.3, seed=1)) == 70
    human = list(range(1000, 2000))
    mixed = mix(ids, human, 0.25, seed=2)
    assert len(mixed) == 100 and sum(t < 100 for t in mixed) == 25


@pytest.mark.parametrize("key", ["k", "ключ", "x" * 100])
def test_seeds_are_hmac_sha256_for_any_key_length(key):
    contexts = np.array([[7, 8, 9], [1, 0, 65535]])
    expected = [int.from_bytes(hmac.new(key.encode(), b"llmassay-wm/1" + struct.pack("<3I", *c), hashlib.sha256).digest()[:8], "little")
                for c in contexts.tolist()]
    assert context_seeds(key, contexts).tolist() == expected


def test_spike_entropy_bound_matches_the_paper_limits():
    from llmassay.watermark.entropy import green_bound, spike_entropy

    one_hot = np.array([[50.0] + [0.0] * 999])
    uniform = np.zeros((1, 1000))
    s_hot, s_flat = spike_entropy(one_hot, 0.25, 2.0)[0], spike_entropy(uniform, 0.25, 2.0)[0]
    assert s_flat == pytest.approx(1 / (1 + 0.001 * (0.75 * (math.e**2 - 1) / (1 + 0.25 * (math.e**2 - 1)))))
    # a uniform distribution: the bias makes green e^2 times as likely: g = 0.25 e^2 / (0.75 + 0.25 e^2)
    assert green_bound(s_flat, 0.25, 2.0) == pytest.approx(0.25 * math.e**2 / (0.75 + 0.25 * math.e**2), rel=2e-3)
    assert green_bound(s_hot, 0.25, 2.0) < 0.27  # a certain model cannot be steered: ~gamma
