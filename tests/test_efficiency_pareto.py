"""The Pareto page: planted points give the planted frontier, in both cost directions; run
directories are read with their CIs; bad input is one line; untrusted labels are escaped."""

from __future__ import annotations

import json

import pytest

from llmassay.efficiency.pareto import ParetoPoint, frontier, higher_is_better, points_from_runs, render_pareto_html
from llmassay.types import LlmassayError


def _p(label, quality, cost):
    return ParetoPoint(label, (quality, quality - 0.1, quality + 0.1), (cost, cost * 0.9, cost * 1.1))


def test_frontier_keeps_exactly_the_non_dominated_points():
    # a: best quality; b: fastest; c: beaten by b on both; d: same quality as a, slower; e: ties b exactly
    pts = [_p("a", 0.8, 10), _p("b", 0.6, 50), _p("c", 0.5, 20), _p("d", 0.8, 5), _p("e", 0.6, 50)]
    rates = {p.label for p in frontier(pts, cost_higher_better=True) if p.on_frontier}
    assert rates == {"a", "b", "e"}
    # The same numbers as costs (lower is better): d is now cheapest at the best quality.
    costs = {p.label for p in frontier(pts, cost_higher_better=False) if p.on_frontier}
    assert costs == {"d"}
    assert higher_is_better("efficiency.decode_tps") and not higher_is_better("efficiency.energy_wh_per_1k")
    assert not higher_is_better("efficiency.e2e_s[p50]")


def _run_dir(root, name, spec, acc, tps, task="arith_sample"):
    folder = root / name
    folder.mkdir()
    metric = lambda v, lo, hi: {"value": v, "ci_low": lo, "ci_high": hi, "n": 40}  # noqa: E731
    doc = {"model": {"spec": spec}, "results": {task: {
        "accuracy": {"acc": metric(acc, acc - 0.1, acc + 0.1)},
        "efficiency": {"decode_tps": metric(tps, tps - 5, tps + 5)}}}}
    (folder / "results_2026-01-01T00-00-00.json").write_text(json.dumps(doc))
    return folder


def test_points_come_from_run_directories_with_their_cis(tmp_path):
    runs = [_run_dir(tmp_path, "big", "llamacpp/big", 0.7, 40.0), _run_dir(tmp_path, "small", "llamacpp/small", 0.4, 120.0),
            _run_dir(tmp_path, "bad", "llamacpp/bad", 0.3, 60.0)]
    points = points_from_runs(runs, "arith_sample", "accuracy.acc", "efficiency.decode_tps")
    assert [p.label for p in points] == ["llamacpp/big", "llamacpp/small", "llamacpp/bad"]
    assert points[0].quality == pytest.approx((0.7, 0.6, 0.8)) and points[1].cost == (120.0, 115.0, 125.0)
    assert [p.on_frontier for p in points] == [True, True, False]
    with pytest.raises(LlmassayError, match="has no metric efficiency.energy_wh_per_1k for task arith_sample"):
        points_from_runs(runs, "arith_sample", "accuracy.acc", "efficiency.energy_wh_per_1k")
    with pytest.raises(LlmassayError, match="must be written probe.metric"):
        points_from_runs(runs, "arith_sample", "acc", "efficiency.decode_tps")


def test_page_escapes_untrusted_labels_and_shows_every_point():
    evil = "<script>alert(1)</script>"
    points = frontier([_p(evil, 0.7, 40.0), _p("q4_k_m", 0.5, 90.0)], cost_higher_better=True)
    html = render_pareto_html(f"sweep {evil}", [{"title": "t", "quality": "acc", "cost": "tokens/s", "points": points}],
                              notes=[evil])
    assert "<script>alert" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert html.count("<svg") == 1 and "Pareto frontier" in html and "0.700 [0.600, 0.800]" in html
    assert "script-src &#39;none&#39;" in html  # no script may run (an attribute: the entity is the quote)


def test_cli_writes_the_page_and_refuses_mismatched_labels(tmp_path, capsys):
    from llmassay.cli import main

    runs = [str(_run_dir(tmp_path, n, f"m/{n}", a, t)) for n, a, t in (("x", 0.7, 40.0), ("y", 0.4, 120.0))]
    out = tmp_path / "pareto.html"
    assert main(["pareto", *runs, "--task", "arith_sample", "--labels", "q8,q4", "--output-path", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "* q8: accuracy.acc 0.700" in printed and "* q4:" in printed and out.read_text().count("<tr>") == 3
    assert main(["pareto", *runs, "--task", "arith_sample", "--labels", "one", "--output-path", str(out)]) == 2
    assert "--labels has 1 labels for 2 runs" in capsys.readouterr().err


def test_quantize_sweep_panels_plot_accuracy_against_size_and_speed_when_timed(tmp_path):
    from llmassay.efficiency.quantize import Divergence, Variant
    from llmassay.efficiency.report import variant_panels
    from llmassay.types import Metric

    def m(v, lo, hi):
        return Metric(v, lo, hi, 40, None, "planted")

    zero = Divergence(m(0, 0, 0), m(1, 1, 1), m(0, 0, 0))
    timed = {"accuracy.acc": m(0.5, 0.4, 0.6), "efficiency.decode_tps": m(100.0, 90.0, 110.0)}
    variants = [Variant("source", tmp_path / "s.gguf", 90.0, zero, metrics=timed),
                Variant("q2_k", tmp_path / "q.gguf", 60.0, zero,
                        metrics={"accuracy.acc": m(0.3, 0.2, 0.4), "efficiency.decode_tps": m(80.0, 70.0, 90.0)}),
                Variant("q8_0", tmp_path / "8.gguf", 140.0, zero, metrics=None)]  # not scored: no point
    size, speed = variant_panels(variants, "mmlu_sample")
    assert [p.label for p in size["points"]] == ["source", "q2_k"] and size["points"][1].cost == (60.0, 60.0, 60.0)
    assert [p.on_frontier for p in size["points"]] == [True, True]  # q2_k is smaller, source more accurate
    assert [p.on_frontier for p in speed["points"]] == [True, False]  # q2_k: slower and less accurate
    assert "mmlu_sample" in speed["quality"] and "tokens/s" in speed["cost"]


def test_report_section_plots_latency_percentiles_and_states_every_method():
    from llmassay.report.section import SectionContext, hook

    def m(v):
        return {"value": v, "ci_low": v * 0.9, "ci_high": v * 1.1, "n": 10}

    metrics = {f"{p}[{q}]": m(v) for p, base in (("e2e_s", 1.0), ("ttft_s", 0.2), ("itl_s", 0.02))
               for q, v in (("p50", base), ("p95", 2 * base), ("p99", 3 * base))}
    details = {"timing_method": ["stream"], "served": "the model runs in a server process: cpu_s … this client's",
               "energy": {"kind": ["estimated"], "method": ["CPU-seconds × 42.50 W per core (…)"],
                          "caveat": "estimated with CodeCarbon's generic 85 W over only 2 logical cores"}}
    section = hook("efficiency", "build")(SectionContext("arith_sample", "efficiency", metrics, details, []))
    assert [p.title for p in section.plots] == ["latency percentiles, seconds (order-statistic CIs over requests)"]
    svg = section.plots[0].svg
    assert all(name in svg for name in ("e2e_s", "ttft_s", "itl_s", "p99")) and "n.e." not in svg
    metrics["e2e_s[p99]"]["ci_high"] = None  # 10 requests cannot bound a p99: marked, never a whisker
    svg = hook("efficiency", "build")(SectionContext("arith_sample", "efficiency", metrics, details, [])).plots[0].svg
    assert "↑ n.e." in svg and "not estimable" in svg
    assert section.notes[:4] == ["timed by: stream", "energy: estimated — CPU-seconds × 42.50 W per core (…)",
                                 "caveat: estimated with CodeCarbon's generic 85 W over only 2 logical cores",
                                 "the model runs in a server process: cpu_s … this client's"]
