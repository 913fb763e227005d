"""Attention cost with context length (`llmassay attention-cost`): the a + b·n + c·n² fit
recovers planted coefficients and finds no n² term where there is none, KV layouts from GGUF
headers give the bytes llama.cpp holds, bad lengths are one-line errors; slow: a real prefill
of SmolLM2 whose measured KV state matches the header's arithmetic."""

from __future__ import annotations

import numpy as np
import pytest

from llmassay.cli.app import main
from llmassay.efficiency.attention_cost import (KvLayout, Target, analyse, check_lengths, kv_layout, measure,
                                                parse_lengths, schedule)
from llmassay.efficiency.attention_fit import fit_cost
from llmassay.types import LlmassayError

LENGTHS = (256, 512, 1024, 2048, 4096, 8192)
SMOLLM2 = {"general.architecture": "llama", "llama.block_count": "30", "llama.attention.head_count": "9",
           "llama.attention.head_count_kv": "3", "llama.embedding_length": "576", "llama.context_length": "8192"}
GEMMA3 = {"general.architecture": "gemma3", "gemma3.block_count": "18", "gemma3.attention.head_count": "4",
          "gemma3.attention.head_count_kv": "1", "gemma3.embedding_length": "640", "gemma3.attention.key_length": "256",
          "gemma3.attention.value_length": "256", "gemma3.context_length": "32768",
          "gemma3.attention.sliding_window": "512"}


def _planted(a: float, b: float, c: float, repeats: int = 5, noise: float = 0.03, seed: int = 1):
    rng = np.random.default_rng(seed)
    ns = [n for n in LENGTHS for _ in range(repeats)]
    times = [(a + b * n + c * n * n) * (1 + noise * rng.standard_normal()) for n in ns]
    return ns, times


def test_the_fit_recovers_planted_coefficients_and_its_cis_cover_them():
    a, b, c = 0.05, 4e-3, 1.5e-6  # SmolLM2-like: 4 ms per token, 1.5 µs per token²
    fit = fit_cost(*_planted(a, b, c))
    for value, (low, high), truth in ((fit.a, fit.a_ci, a), (fit.b, fit.b_ci, b), (fit.c, fit.c_ci, c)):
        assert low <= truth <= high
    assert fit.c == pytest.approx(c, rel=0.1) and fit.b == pytest.approx(b, rel=0.1)
    assert fit.c_excludes_zero
    truth_share = c * 8192**2 / (a + b * 8192 + c * 8192**2)
    assert fit.quadratic_share_ci[0] <= truth_share <= fit.quadratic_share_ci[1]
    assert [p.n for p in fit.per_token] == list(LENGTHS) and all(p.repeats == 5 for p in fit.per_token)
    assert fit.per_token[-1].seconds == pytest.approx(a / 8192 + b + c * 8192, rel=0.05)


def test_a_flat_per_token_series_gives_a_c_whose_ci_contains_zero():
    fit = fit_cost(*_planted(0.0, 3e-3, 0.0))
    assert fit.c_ci[0] < 0 < fit.c_ci[1] and not fit.c_excludes_zero
    assert fit.b_ci[0] <= 3e-3 <= fit.b_ci[1]


def test_the_bootstrap_resamples_repeats_within_each_length():
    ns, times = _planted(0.05, 4e-3, 1.5e-6, repeats=1)
    fit = fit_cost(ns, times)  # one repeat per length: nothing to resample, the CI has no width
    assert fit.c_ci[0] == pytest.approx(fit.c) and fit.c_ci[1] == pytest.approx(fit.c)


def test_fewer_than_three_lengths_cannot_be_fitted():
    with pytest.raises(LlmassayError, match="at least 3 distinct"):
        fit_cost([256, 256, 512, 512], [1.0, 1.1, 2.0, 2.1])


@pytest.mark.parametrize("text,expected", [("256,512,1k,8k", (256, 512, 1024, 8192)), ("8192, 256,512,512", (256, 512, 8192))])
def test_lengths_parse_with_k_as_1024(text, expected):
    assert parse_lengths(text) == expected


@pytest.mark.parametrize("text", ["256,512.5,1024", "256,abc,1k", "0,256,512", "256,-512,1024", "256,1.5k,2k", "256,512"])
def test_bad_lengths_are_one_line_errors(text):
    with pytest.raises(LlmassayError) as info:
        parse_lengths(text)
    assert "\n" not in str(info.value) and str(info.value).startswith("attention-cost: --lengths")


def test_a_length_above_the_window_names_the_window():
    layout = kv_layout(SMOLLM2, "smollm2-135m")
    check_lengths((256, 8192), layout, "smollm2-135m")
    with pytest.raises(LlmassayError) as info:
        check_lengths((256, 8192, 16384), layout, "smollm2-135m")
    assert "16384" in str(info.value) and "window of 8192" in str(info.value) and "\n" not in str(info.value)


def test_the_cli_refuses_bad_lengths_in_one_line(tmp_path, capsys):
    rc = main(["attention-cost", "--model", "llamacpp/smollm2-135m", "--lengths", "256,512.5,1k",
               "--output-path", str(tmp_path)])
    err = capsys.readouterr().err
    assert rc == 2 and "512.5" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_kv_bytes_from_the_header_full_and_sliding_window_layers():
    smol = kv_layout(SMOLLM2, "smollm2-135m")
    assert (smol.n_layer, smol.n_head_kv, smol.head_dim_k, smol.global_layers) == (30, 3, 64, 30)
    assert smol.in_use_bytes(2048) == 2048 * 30 * 3 * 128 * 2  # 47.2 MB, what llama_state_seq_get_size measured
    gemma = kv_layout(GEMMA3, "gemma3-270m")
    assert (gemma.global_layers, gemma.n_swa, gemma.head_dim_k) == (3, 512, 256)  # layers 5, 11, 17
    row = 1 * 512 * 2
    assert gemma.in_use_bytes(256) == 18 * 256 * row  # below the window every layer holds every token
    assert gemma.in_use_bytes(8192) == (3 * 8192 + 15 * 512) * row  # local layers keep their last 512
    # allocated: llama.cpp's log for n_ctx 4096 says 12 MiB global + 60 MiB SWA (full) or 15 MiB (not full)
    assert gemma.allocated_bytes(4096, True, 512) == (12 + 60) * 2**20
    assert gemma.allocated_bytes(4096, False, 512) == (12 + 15) * 2**20
    renamed = {k.replace("gemma3.", "newarch."): v for k, v in GEMMA3.items()}
    unknown = kv_layout({**renamed, "general.architecture": "newarch"}, "x")  # a sliding window, pattern unknown
    assert unknown.n_swa == 512 and unknown.global_layers is None and unknown.in_use_bytes(1024) is None


def test_a_header_without_a_field_is_a_one_line_error():
    with pytest.raises(LlmassayError, match="no llama.block_count"):
        kv_layout({k: v for k, v in SMOLLM2.items() if k != "llama.block_count"}, "smollm2-135m")


def test_the_schedule_interleaves_models_and_alternates_the_order():
    order = schedule(["A", "B"], (1, 2, 3), 2)
    assert order[:6] == [(0, 1, "A"), (0, 1, "B"), (0, 2, "A"), (0, 2, "B"), (0, 3, "A"), (0, 3, "B")]
    assert order[6:] == [(1, 3, "B"), (1, 3, "A"), (1, 2, "B"), (1, 2, "A"), (1, 1, "B"), (1, 1, "A")]


def test_prefill_on_smollm2_matches_the_header_kv_bytes(smollm2):
    llm = smollm2.llm
    layout = kv_layout(dict(llm.metadata), "smollm2-135m")
    target = Target("smollm2-135m", llm, "", layout, {"n_batch": 64, "n_ubatch": 64, "swa_full": True})
    try:
        prefills = measure([target], (32, 64, 96), repeats=2)
    finally:
        smollm2.reset()
    assert len(prefills) == 6 and all(p.wall_s > 0 and p.cpu_s > 0 for p in prefills)
    result = analyse(target, prefills)
    for row in result.kv:  # the measured state is the header's K and V plus a few bytes per cell
        assert row["state_bytes"] == pytest.approx(row["header_in_use_bytes"], rel=0.01)
    assert result.kv[-1]["state_bytes"] > 2.9 * result.kv[0]["state_bytes"]
    assert result.cpu.b > 0 and [p.n for p in result.cpu.per_token] == [32, 64, 96]
    from llmassay.backends.llama_internals import context_defaults, context_facts

    facts = context_facts(llm)  # llama.cpp's own figures agree with the header's
    assert (facts["n_layer"], facts["n_head_kv"], facts["n_swa"]) == (layout.n_layer, layout.n_head_kv, 0)
    assert facts["flash_attn_type"] == 0 and context_defaults()["swa_full"] is True  # llama-cpp-python: off; llama.cpp: full SWA


def test_a_planted_run_gives_tables_and_a_plot_without_a_model():
    from llmassay.efficiency.attention_cost import Prefill, markdown
    from llmassay.efficiency.plots import attention_curves

    layout = kv_layout(GEMMA3, "gemma3-270m")
    target = Target("gemma3-270m (swa_full=false)", None, "", layout, {"swa_full": False, "n_ubatch": 512})
    ns, times = _planted(0.05, 3e-3, 4e-7, repeats=3)
    prefills = [Prefill(target.label, n, i % 3, t, t, layout.in_use_bytes(n) + 12 * n) for i, (n, t) in enumerate(zip(ns, times))]
    result = analyse(target, prefills)
    assert result.kv[-1]["allocated_bytes"] == layout.allocated_bytes(8192, False, 512) < layout.allocated_bytes(8192, True, 512)
    table = markdown([result], {"repeats": 3, "threads": 1, "n_batch": 512, "n_ubatch": 512, "flash_attn": "off"})
    assert "| gemma3-270m (swa_full=false) | cpu |" in table and "n=8192" in table
    svg = attention_curves([result])
    assert svg.startswith("<svg") and "gemma3-270m (swa_full=false)" in svg and "8192" in svg


def test_the_cli_wants_two_repeats_for_an_interval(tmp_path, capsys):
    rc = main(["attention-cost", "--model", "llamacpp/smollm2-135m", "--repeats", "1", "--output-path", str(tmp_path)])
    err = capsys.readouterr().err
    assert rc == 2 and "--repeats must be at least 2" in err and len(err.strip().splitlines()) == 1
