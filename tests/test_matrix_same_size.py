"""Models of one size in the matrix (another quantisation of one model: a comparison, not a
trend), the several-model folder's report.html, and model sizes through the Ray executor's
plumbing — scripted backends, no model, no Ray."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest

from fakes import answer_key_backend, hashed_backend, with_size
from llmassay.engine.executors import RayExecutor, _BackendWorker
from llmassay.evaluation import RunConfig, evaluate, model_size
from llmassay.report import write_report
from llmassay.report.matrix import build_matrix, matrix_rows, write_matrix
from llmassay.scaling import SizePoint, fit_trend, same_size_notes
from llmassay.tasks.loader import load_task

N = 40
SAMPLES = load_task("mmlu_sample").samples[:N]


def _knows(first: int):
    """Right on the first `first` items, a wrong letter on the rest."""
    key = {s.prompt: "ABCD"[int(s.target) if i < first else (int(s.target) + 1) % 4] for i, s in enumerate(SAMPLES)}
    return answer_key_backend(lambda p: key.get(p))


def _run(tmp_path, name, backend):
    cfg = RunConfig(model=f"test/{name}", tasks=["mmlu_sample"], probes=["accuracy"], limit=N,
                    output_path=str(tmp_path / name), use_cache=False)
    return evaluate(cfg, backend=backend).results_path.parent


def test_equal_sizes_fit_without_dividing_by_zero():
    rng = np.random.default_rng(0)
    values = [(rng.random(100) < p).astype(float) for p in (0.8, 0.6, 0.3)]
    params = [135 * 10**6, 135 * 10**6, 268 * 10**6]
    points = [SizePoint(f"m{i}", p, float(v.mean()), {str(j): float(x) for j, x in enumerate(v)})
              for i, (v, p) in enumerate(zip(values, params))]
    trend = fit_trend(points)
    assert trend is not None and trend.sizes == 2 and trend.points == 3 and trend.curvature is None
    x = np.log10(params)
    assert trend.slope == pytest.approx(np.polyfit(x, [v.mean() for v in values], 1)[0])
    assert np.isfinite(trend.slope_ci).all() and trend.inverse  # 0.7 at 135M, 0.3 at 268M
    assert fit_trend(points[:2]) is None  # one size only: no trend at all


def test_two_quantisations_of_one_model_are_said_and_not_called_a_trend(tmp_path):
    small = 135 * 10**6
    runs = [_run(tmp_path, "q4", with_size(_knows(30), small, "llama", "q4_1")),
            _run(tmp_path, "q8", with_size(_knows(32), small, "llama", "q8_0")),
            _run(tmp_path, "gemma", with_size(_knows(10), 268 * 10**6, "gemma3", "q4_k_m"))]
    m = build_matrix(runs)
    same = [n for n in m.notes if "same size" in n]
    assert len(same) == 1 and "test/q4 and test/q8" in same[0] and "different quantisations (q4_1, q8_0)" in same[0]
    assert "not a trend" in same[0] and not any("test/gemma" in n for n in same)
    assert any("different families" in n for n in m.notes)
    (row,) = m.rows
    assert row.trend is not None and row.trend.sizes == 2 and row.trend.points == 3
    assert "3 models at 2 sizes" in matrix_rows(m)[0][-1]
    same = {str(i): float(i < 3) for i in range(10)}  # the bundled models' sizes, 0.3 for all: the slope is 0
    flat = fit_trend([SizePoint(k, p, 0.3, same) for k, p in (("a", 134515008), ("b", 134515008), ("c", 268098176))])
    assert flat is not None and f"{flat.slope:+.3f}" == "+0.000"  # rounding dust never prints as "-0.000"
    # the two quantisations alone: one size, no trend, and the row says why
    (pair,) = build_matrix(runs[:2]).rows
    assert pair.trend is None
    assert pair.trend_note == "the models with this metric have one size: a comparison, not a trend"
    assert same_size_notes([("a", 10, "x", "f16"), ("b", 10, "x", "f16")])[0].endswith(
        "not a trend; the trend fit counts them as measurements at one size")
    assert "the same quantisation" in same_size_notes([("a", 10, "x", "f16"), ("b", 10, "x", "f16")])[0]
    assert same_size_notes([("a", 10, "x", "f16"), ("b", 20, "x", "f16")]) == []


def test_the_several_model_folder_gets_a_report_with_the_matrix_and_each_model(tmp_path):
    out = tmp_path / "out"
    runs = [_run(out, "a<b>", with_size(_knows(30), 10**8, "toy")),
            _run(out, "c", with_size(_knows(10), 10**9, "toy"))]
    (runs[0] / "report.html").write_text("its report")  # one model has its own report, the other not
    written = write_matrix(build_matrix(runs), out)
    assert [p.name for p in written] == ["matrix.json", "matrix.html", "report.html"]
    html = (out / "report.html").read_text()
    assert 'id="matrix-table"' in html and 'id="each-model"' in html and html.count("<svg") == 1
    assert 'href="a&lt;b&gt;/report.html"' in html and "test/a&lt;b&gt;" in html and "<b>" not in html
    assert f"llmassay report {out / 'c'}" in html  # no report.html there yet: the command to make one
    # `llmassay report OUT` rebuilds it from matrix.json, found by name when the folder moved
    (out / "report.html").unlink()
    moved = tmp_path / "moved"
    out.rename(moved)
    assert write_report(moved) == moved / "report.html"
    assert 'id="matrix-table"' in (moved / "report.html").read_text()
    assert json.loads((moved / "matrix.json").read_text())["models"][0]["run"].endswith("a<b>")


def test_a_ray_worker_passes_the_backend_size_on():
    worker = _BackendWorker.__new__(_BackendWorker)
    worker.backend = with_size(hashed_backend("w"), 135 * 10**6, "llama", "q4_1")
    assert worker.model_size()["parameters"] == 135 * 10**6
    worker.backend = hashed_backend("plain")  # a backend without the hook: no size, no error
    assert worker.model_size() is None
    # the executor asks its first actor; evaluation records what it answers
    sized = _BackendWorker.__new__(_BackendWorker)
    sized.backend = with_size(hashed_backend("w"), 268 * 10**6, "gemma3", "q4_k_m")
    actor = SimpleNamespace(model_size=SimpleNamespace(remote=sized.model_size))
    executor = RayExecutor.__new__(RayExecutor)
    executor._actors, executor._ray = [actor], SimpleNamespace(get=lambda ref: ref)
    assert model_size(executor) == {"parameters": 268 * 10**6, "architecture": "gemma3", "quantisation": "q4_k_m",
                                    "name": "hashed:w", "source": "planted"}
