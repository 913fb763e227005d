"""The efficiency probe recovers planted timings, bypasses the cache and tags its energy."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fakes import ScriptedBackend, SleepyBackend, hashed_backend
from llmassay.efficiency.host import ESTIMATED, MEASURED, EnergyMeter
from llmassay.efficiency.stats import percentile_metric
from llmassay.efficiency.timing import E2E_ONLY, STREAM, timed_generate
from llmassay.engine.cache import RequestCache
from llmassay.engine.engine import Engine
from llmassay.engine.store import SampleLog
from llmassay.probes import ProbeConfig, probe_class, run_probe
from llmassay.tasks.loader import load_task
from llmassay.types import GenerateRequest, LlmassayError


def _run(tmp_path, backend, limit=6, cache=None, **options):
    task = load_task("arith_sample").limited(limit)
    engine = Engine(backend, cache)
    cfg = ProbeConfig(options=tuple(options.items()))
    return run_probe(probe_class("efficiency")(), task, engine, cfg, SampleLog(tmp_path / "rows.jsonl"))


def test_planted_ttft_and_decode_rate_are_recovered(tmp_path):
    # First token after 60 ms, then one every 20 ms (50 tokens/s); a loaded machine only
    # makes sleeps longer, so the bounds are tight below and generous above.
    backend = SleepyBackend(ttft_s=0.06, tpot_s=0.02, n_out=6)
    result = _run(tmp_path, backend, limit=5, warmup=1)
    m = result.metrics
    assert 0.06 <= m["ttft_s[p50]"].value < 0.06 + 0.15
    assert 0.06 + 5 * 0.02 <= m["e2e_s[p50]"].value < 0.16 + 0.3
    assert 20 < m["decode_tps"].value <= 50.5
    assert 0.02 <= m["tpot_s"].value < 0.02 + 0.03
    assert m["e2e_s[p50]"].value <= m["e2e_s[p95]"].value <= m["e2e_s[p99]"].value
    assert m["e2e_s[p50]"].ci_low is None  # 5 requests cannot bound a median (that needs 6): not a number
    assert m["e2e_s[p99]"].n == 5 and m["seconds_per_1k"].value == pytest.approx(1000 * m["e2e_s[p50]"].value, rel=0.3)
    assert result.details["timing_method"] == [STREAM]
    assert len(backend.asked) == 5 + 1  # the warm-up request ran, untimed


def test_every_request_runs_on_the_backend_even_when_the_cache_holds_it(tmp_path):
    backend = SleepyBackend(ttft_s=0.0, tpot_s=0.0, n_out=2)
    cache = RequestCache(tmp_path / "cache.sqlite")
    task = load_task("arith_sample").limited(3)
    Engine(backend, cache).generate([GenerateRequest(prompt=s.prompt, max_tokens=32) for s in task.samples])
    asked_before = len(backend.asked)
    result = _run(tmp_path, backend, limit=3, cache=cache, warmup=0)
    assert len(backend.asked) - asked_before == 3
    assert result.details["cache"].startswith("bypassed")


def test_the_engine_counts_the_probes_requests_as_computed(tmp_path):
    task = load_task("arith_sample").limited(3)
    engine = Engine(SleepyBackend(0.0, 0.0, 2))
    run_probe(probe_class("efficiency")(), task, engine, ProbeConfig(options=(("warmup", 0),)),
              SampleLog(tmp_path / "rows.jsonl"))
    assert (engine.stats.requests, engine.stats.computed, engine.stats.cache_hits) == (3, 3, 0)


def test_backend_without_streaming_reports_end_to_end_only_never_a_guessed_ttft(tmp_path):
    result = _run(tmp_path, hashed_backend(), limit=4, warmup=0)
    assert "ttft_s[p50]" not in result.metrics and "decode_tps" not in result.metrics
    assert "e2e_s[p50]" in result.metrics and result.details["timing_method"] == [E2E_ONLY]


def test_energy_is_estimated_from_cpu_time_and_says_so(tmp_path):
    meter = EnergyMeter(watts_per_core=10.0, rapl_root=tmp_path)  # no RAPL files here
    meter.start()
    energy = meter.stop(cpu_seconds=36.0)
    assert energy.kind == ESTIMATED and energy.joules == 360.0 and energy.wh == pytest.approx(0.1)
    assert "10.00 W per core" in energy.method
    result = _run(tmp_path, SleepyBackend(0.0, 0.0, 2), limit=3, warmup=0, watts_per_core=5.0)
    rows = result.samples
    assert all(r["energy_kind"] in (ESTIMATED, MEASURED) for r in rows)
    assert result.details["energy"]["kind"] and result.metrics["energy_wh_per_1k"].value == pytest.approx(
        1000 * result.metrics["energy_wh"].value)


def test_rapl_counters_are_read_and_wraps_handled(tmp_path):
    zone = tmp_path / "intel-rapl:0"
    zone.mkdir()
    (zone / "energy_uj").write_text("999000000")
    (zone / "max_energy_range_uj").write_text("1000000000")
    meter = EnergyMeter(rapl_root=tmp_path)
    meter.start()
    (zone / "energy_uj").write_text("2000000")  # wrapped: 1 J to the top, then 2 J
    energy = meter.stop(cpu_seconds=100.0)
    assert energy.kind == MEASURED and energy.joules == pytest.approx(3.0)


def test_percentile_ci_brackets_the_value_and_p99_of_few_requests_is_near_the_max():
    values = [float(v) for v in range(1, 101)]
    p50 = percentile_metric(values, 50)
    # order statistics: ranks 40 and 61 of 100 (Binomial(100, 0.5) tails ≤ 2.5 % each)
    assert p50.value == pytest.approx(50.5) and (p50.ci_low, p50.ci_high) == (40.0, 61.0)
    assert percentile_metric(values[:10], 99).value == pytest.approx(9.91)


def test_percentile_metric_covers_the_true_percentile_at_its_nominal_level():
    # 400 simulated runs of 100 lognormal latencies, through the probe's own function. The
    # percentile bootstrap it replaces cannot pass the sample maximum and covered less.
    import math
    from statistics import NormalDist

    rng = np.random.default_rng(3)
    for q in (50, 95):
        truth = math.exp(0.8 * NormalDist().inv_cdf(q / 100))
        hits = [m.ci_low <= truth <= m.ci_high
                for m in (percentile_metric(rng.lognormal(0.0, 0.8, 100), q) for _ in range(400))]
        assert np.mean(hits) >= 0.95 - 0.02, (q, np.mean(hits))


def test_p99_of_the_quick_preset_has_no_upper_bound_and_every_output_says_so(tmp_path):
    # The quick preset times 12 requests: the p99 lies above the largest of them with
    # probability 1 − 0.99^12 ≈ 89 %, so no number is an honest upper bound for it. The old
    # bootstrap reported one (at most the sample maximum) and covered the p99 in 13 % of runs.
    from rich.console import Console

    from llmassay.evaluation import RunConfig, evaluate
    from llmassay.report.html import build_report
    from llmassay.report.rundir import load_run
    from llmassay.report.table import metrics_table

    assert probe_class("efficiency").presets["quick"].limit == 12
    values = [0.1 * (1 + i) for i in range(12)]
    for q, upper in ((50, True), (95, False), (99, False)):
        m = percentile_metric(values, q)
        assert (m.ci_high is not None) == upper and m.ci_low is not None, q
    assert "upper bound not estimable below n = 368" in percentile_metric(values, 99).method

    cfg = RunConfig(model="test/sleepy", tasks=["arith_sample"], probes=["efficiency"], limit=12,
                    output_path=str(tmp_path / "run"), use_cache=False, probe_options={"efficiency.warmup": 0})
    out = evaluate(cfg, backend=SleepyBackend(ttft_s=0.0, tpot_s=0.0, n_out=2))
    doc = json.loads(out.results_path.read_text())
    p99 = doc["results"]["arith_sample"]["efficiency"]["e2e_s[p99]"]
    assert p99["ci_high"] is None and isinstance(p99["ci_low"], float) and p99["n"] == 12  # JSON null
    assert doc["probes"]["efficiency"]["schema_version"] == 2  # old rows are not resumed under new metrics
    console = Console(width=200, record=True)
    for table in metrics_table(doc):
        console.print(table)
    assert "not estimable]" in console.export_text()
    html = build_report(load_run(tmp_path / "run"))
    assert "not estimable" in html and "n.e." in html  # the table cell and the plot's marker


def test_usd_per_1k_scales_seconds_by_the_price(tmp_path):
    result = _run(tmp_path, SleepyBackend(0.0, 0.0, 2), limit=3, warmup=0, usd_per_hour=3.6)
    m = result.metrics
    assert m["usd_per_1k"].value == pytest.approx(m["seconds_per_1k"].value * 3.6 / 3600)


def test_rows_are_json_and_bad_options_are_one_line_errors(tmp_path):
    result = _run(tmp_path, SleepyBackend(0.0, 0.0, 2), limit=2, warmup=0)
    json.dumps(result.samples)
    with pytest.raises(LlmassayError, match="efficiency.warmup"):
        probe_class("efficiency").options({"warmup": "-1"})


def test_timed_generate_e2e_only_uses_the_backend_once():
    backend = ScriptedBackend(lambda c, x: 0.0, lambda r: "a b c")
    gen, timing = timed_generate(backend, GenerateRequest(prompt="x", max_tokens=4))
    assert gen.text == "a b c" and timing.method == E2E_ONLY and timing.ttft_s is None and len(backend.asked) == 1


@pytest.mark.slow
def test_llamacpp_perf_counters_time_the_whole_prompt(smollm2):
    req = GenerateRequest(prompt="The capital of France is", max_tokens=6)
    for _ in range(2):  # the second run must prefill the whole prompt again: the KV cache was emptied
        gen, timing = timed_generate(smollm2, req)
        assert timing.method == "llama.cpp perf counters"
        assert timing.n_prompt == len(smollm2.tokenize(req.prompt))
        assert timing.n_decode in (gen.n_tokens - 1, gen.n_tokens) and timing.decode_tps > 0
        assert 0 < timing.ttft_s < timing.e2e_s and timing.prefill_s > 0


def test_spec_run_reports_where_two_token_streams_part():
    from llmassay.efficiency.speculative import SpecRun

    assert SpecRun(0, [1, 2, 3], [1, 2, 3], 1.0, 0.5).first_difference is None
    assert SpecRun(0, [1, 2, 3], [1, 9, 3], 1.0, 0.5).first_difference == 1
    assert SpecRun(0, [1, 2, 3], [1, 2], 1.0, 0.5).first_difference == 2


@pytest.mark.slow
def test_prompt_lookup_reports_how_far_it_keeps_the_greedy_tokens(smollm2_path):
    """Verifying a draft in one batch is not bit-identical to one-token steps on every CPU
    build (identical for 32 tokens on AMD AVX2/AVX-512 builds, first difference at token 5 on
    an Intel AVX-512 build), so the claim is the report, not identity: both decodes run to
    length, the first token (the same prefill in both) agrees, and `identical` and
    `first_difference` say how far they agree."""
    from llmassay.efficiency.speculative import compare_prompt_lookup

    prompt = load_task("json_sample").samples[0].prompt
    (run,) = compare_prompt_lookup(smollm2_path, [prompt], max_tokens=12, n_ctx=512)
    assert len(run.tokens_plain) == len(run.tokens_lookup) == 12, run.as_dict()
    first = run.first_difference
    assert (first is None) == run.identical == run.as_dict()["identical"]
    assert first is None or (first >= 1 and run.tokens_plain[:first] == run.tokens_lookup[:first]
                             and run.tokens_plain[first] != run.tokens_lookup[first])


def test_divergence_of_a_model_from_itself_is_zero_and_grows_with_planted_noise():
    import numpy as np

    from llmassay.efficiency.quantize import _log_softmax, divergence, source_note

    rng = np.random.default_rng(0)
    logits = rng.normal(size=(40, 50)) * 3
    tokens = rng.integers(0, 50, size=41).tolist()
    same = divergence(_log_softmax(logits), _log_softmax(logits), tokens)
    assert same.kl.value == pytest.approx(0.0, abs=1e-12) and same.same_top.value == 1.0 and same.delta_p.value == 0
    small = divergence(_log_softmax(logits), _log_softmax(logits + rng.normal(size=logits.shape) * 0.1), tokens)
    large = divergence(_log_softmax(logits), _log_softmax(logits + rng.normal(size=logits.shape) * 2.0), tokens)
    assert 0 < small.kl.value < large.kl.value and large.same_top.value < small.same_top.value <= 1.0
    # Exact KL of one position against a hand computation
    p, q = np.log(np.array([[0.5, 0.5]])), np.log(np.array([[0.9, 0.1]]))
    assert divergence(p, q, [0, 1]).kl.value == pytest.approx(0.5 * np.log(0.5 / 0.9) + 0.5 * np.log(0.5 / 0.1))
    assert "cannot recover" in source_note(3) and "unquantised" in source_note(1)


def test_unknown_quantisation_type_is_a_one_line_error():
    from llmassay.efficiency.quantize import ftype_of

    with pytest.raises(LlmassayError, match="unknown type 'q9_k'"):
        ftype_of("q9_k")
    assert ftype_of("q8_0") == 7


@pytest.mark.slow
def test_quantize_sweep_cli_writes_kl_table_and_pareto(tmp_path, smollm2_path, capsys):
    from llmassay.cli import main

    rc = main(["quantize-sweep", "--model", str(smollm2_path), "--types", "q8_0", "--task", "arith_sample",
               "--limit", "2", "--text-tokens", "32", "--no-brittleness", "--output-path", str(tmp_path)])
    assert rc == 0, capsys.readouterr().err
    record = json.loads((tmp_path / "quantize.json").read_text())
    source, q8 = record["variants"]
    assert source["kl"]["value"] == 0 and 0 <= q8["kl"]["value"] < 0.1 and q8["same_top"]["value"] > 0.8
    assert "cannot recover" in record["note"] and (tmp_path / "pareto.svg").read_text().startswith("<svg")
    assert "q8_0" in (tmp_path / "quantize.html").read_text()


def test_default_power_cites_codecarbon_and_warns_on_a_few_core_host(monkeypatch):
    from llmassay.efficiency import host

    assert "POWER_CONSTANT" in host.POWER_SOURCE and host.DEFAULT_PACKAGE_WATTS == 85.0
    monkeypatch.setattr(host.os, "cpu_count", lambda: 2)
    assert EnergyMeter(rapl_root=host.Path("/nonexistent")).watts_per_core == 42.5
    caveat = host.energy_caveat([ESTIMATED], 0.0)["caveat"]
    assert "2 logical cores (42.5 W each)" in caveat and "efficiency.watts_per_core" in caveat
    assert host.energy_caveat([ESTIMATED], 2.2) == {} and host.energy_caveat([MEASURED], 0.0) == {}
    monkeypatch.setattr(host.os, "cpu_count", lambda: 64)
    assert host.energy_caveat([ESTIMATED], 0.0) == {}


def _spec_runs(plain_s_per_token, lookup_s_per_token, lookup_tokens, jitter, rng):
    """One repeat of a planted comparison: prompt i makes 64 plain tokens at
    plain_s_per_token[i] s each and lookup_tokens[i] tokens (fewer where the outputs part)
    at lookup_s_per_token[i] s each, with a little timing jitter."""
    from llmassay.efficiency.speculative import SpecRun

    runs = []
    for i, (tp, tl, n) in enumerate(zip(plain_s_per_token, lookup_s_per_token, lookup_tokens)):
        plain = list(range(64))
        lookup = plain[:n] if n == 64 else plain[: n - 1] + [999]
        runs.append(SpecRun(i, plain, lookup, 64 * tp * (1 + jitter * rng.normal()),
                            n * tl * (1 + jitter * rng.normal())))
    return runs


def test_speculative_speedup_is_per_token_averaged_per_prompt_and_resampled_over_prompts():
    from llmassay.efficiency.speculative import per_prompt_speedup

    # Planted: lookup is exactly 2× faster per token on every prompt; on 6 of 20 prompts its
    # output parts from the plain one and is 16 tokens long. Whole-answer times would say 8×
    # there (64 tokens against 16); per token it is 2× everywhere.
    rng = np.random.default_rng(0)
    plain = rng.uniform(0.01, 0.03, size=20)
    tokens = [16 if i % 10 < 3 else 64 for i in range(20)]
    repeats = [_spec_runs(plain, plain / 2, tokens, 0.01, rng) for _ in range(3)]
    summary = per_prompt_speedup(repeats)
    assert summary.speedup.value == pytest.approx(2.0, rel=0.02)
    assert 1.95 < summary.speedup.ci_low <= summary.speedup.ci_high < 2.05
    assert summary.speedup.n == 20 and summary.n_prompts == 20 and summary.n_repeats == 3  # prompts, not 60 pairs
    assert summary.identical.value == pytest.approx(14 / 20) and summary.identical.n == 20
    old = np.mean([r.seconds_plain / r.seconds_lookup for rs in repeats for r in rs])  # the old pooled ratio
    assert old > 3.5  # what the whole-answer ratio said: 0.7 × 2 + 0.3 × 8


def test_speculative_speedup_ci_is_as_wide_as_prompts_make_it_not_narrowed_by_repeats():
    from llmassay.efficiency.speculative import per_prompt_speedup

    # Prompts differ in their true speed-up (0.5×–1.5×); repeats of one prompt agree to 1 %.
    # 3 or 30 repeats must give the same interval: repeats add no information about prompts.
    rng = np.random.default_rng(1)
    plain = np.full(15, 0.02)
    lookup = plain / rng.uniform(0.5, 1.5, size=15)
    few = per_prompt_speedup([_spec_runs(plain, lookup, [64] * 15, 0.01, rng) for _ in range(3)])
    many = per_prompt_speedup([_spec_runs(plain, lookup, [64] * 15, 0.01, rng) for _ in range(30)])
    width = lambda m: m.ci_high - m.ci_low  # noqa: E731
    assert width(many.speedup) == pytest.approx(width(few.speedup), rel=0.15)
    assert few.speedup.n == many.speedup.n == 15 and few.identical.value == 1.0


def test_speculative_prompts_with_no_token_are_skipped_and_named():
    from llmassay.efficiency.speculative import SpecRun, per_prompt_speedup

    runs = [SpecRun(0, [1, 2], [1, 2], 0.2, 0.1), SpecRun(1, [], [], 0.01, 0.01)]
    summary = per_prompt_speedup([runs])
    assert summary.skipped == (1,) and summary.speedup.n == 1 and summary.speedup.value == pytest.approx(2.0)


def test_no_peak_rss_where_the_os_has_no_resource_module(tmp_path, monkeypatch):
    """Windows has no `resource`: peak_rss_mb() is None there, and the probe reports the
    rest rather than failing on float(None)."""
    import sys

    from llmassay.efficiency import host
    from llmassay.evaluation import RunConfig, evaluate

    assert host.peak_rss_mb() > 1  # MB on this POSIX host
    monkeypatch.setitem(sys.modules, "resource", None)  # `import resource` now fails, as on Windows
    assert host.peak_rss_mb() is None
    cfg = RunConfig(model="test/sleepy", tasks=["arith_sample"], probes=["efficiency"], limit=3,
                    output_path=str(tmp_path / "run"), use_cache=False, probe_options={"efficiency.warmup": 0})
    metrics = evaluate(cfg, backend=SleepyBackend(ttft_s=0.0, tpot_s=0.0, n_out=2)).results["results"]["arith_sample"]["efficiency"]
    assert "peak_rss_mb" not in metrics and metrics["e2e_s[p50]"]["n"] == 3
