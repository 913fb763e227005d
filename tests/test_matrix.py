"""Several models at once: the models × metrics matrix, its best-of-row marks and the
trends with size, recovered from scripted backends of planted size-dependence (no model)."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

from fakes import answer_key_backend, with_size
from llmassay.backends.base import _REGISTRY
from llmassay.backends.model_size import ModelSize, gguf_size
from llmassay.evaluation import RunConfig, evaluate
from llmassay.report.matrix import Cell, Matrix, MatrixModel, MatrixRow, build_matrix, render_matrix_html
from llmassay.scaling import SizePoint, family_notes, fit_trend
from llmassay.tasks.loader import load_task
from llmassay.types import LlmassayError

N = 60
SAMPLES = load_task("mmlu_sample").samples[:N]


def _rank(salt: str, prompt: str) -> float:
    return int.from_bytes(hashlib.sha256(f"{salt}\x1f{prompt}".encode()).digest()[:8], "big") / 2**64


def knows_share(share: float, salt: str = "items"):
    """Answers right exactly the items whose hashed rank is below `share` (same salt: nested
    sets, a smaller share knows a subset of a larger one), and a wrong letter elsewhere."""
    key = {s.prompt: "ABCD"[int(s.target) if _rank(salt, s.prompt) < share else (int(s.target) + 1) % 4]
           for s in SAMPLES}
    return answer_key_backend(lambda p: key.get(p))


def _run(tmp_path, name, backend):
    cfg = RunConfig(model=f"test/{name}", tasks=["mmlu_sample"], probes=["accuracy"], limit=N,
                    output_path=str(tmp_path / name), use_cache=False)
    return evaluate(cfg, backend=backend).results_path.parent


def _matrix(tmp_path, plan):
    """plan: (name, share known, parameters, architecture, item salt) per model."""
    return build_matrix([_run(tmp_path, name, with_size(knows_share(share, salt), params, arch))
                         for name, share, params, arch, salt in plan])


def test_accuracy_falling_with_size_is_flagged_inverse_and_the_smallest_marked_best(tmp_path):
    m = _matrix(tmp_path, [("s", 0.9, 10**8, "toy", "items"), ("m", 0.6, 10**9, "toy", "items"),
                           ("l", 0.3, 10**10, "toy", "items")])
    (row,) = m.rows
    assert (row.task, row.probe, row.metric) == ("mmlu_sample", "accuracy", "acc")
    values = [c.value for c in row.cells]
    assert values[0] > values[1] > values[2]  # the planted order, recovered
    assert row.trend is not None and row.trend.inverse and not row.trend.improves
    assert row.trend.slope_ci[1] < 0 and row.trend.sizes == 3
    assert (row.trend.slope, row.trend.intercept) == pytest.approx(tuple(np.polyfit([8, 9, 10], values, 1)))
    assert "paired bootstrap over the 60 items" in row.trend.method
    assert [c.best for c in row.cells] == [True, False, False]
    assert row.separation.startswith("paired bootstrap over 60 common items") and row.separation.endswith("separated")
    assert m.notes == []  # one family, one quantisation: no warning
    html = render_matrix_html(m)
    assert html.count("<svg") == 1 and "mmlu_sample · accuracy · acc: inverse scaling" in html
    doc = json.loads(json.dumps(m.as_dict()))
    assert doc["rows"][0]["trend"]["verdict"] == "inverse scaling" and doc["models"][0]["size"]["parameters"] == 10**8


def test_a_flat_planted_trend_is_not_flagged_and_no_best_is_marked(tmp_path):
    m = _matrix(tmp_path, [(f"m{i}", 0.5, 10**(8 + i), "toy", f"salt{i}") for i in range(3)])
    (row,) = m.rows
    assert row.trend is not None and not row.trend.inverse and not row.trend.improves and row.trend.shape is None
    assert row.trend.slope_ci[0] < 0 < row.trend.slope_ci[1]
    assert not any(c.best for c in row.cells) and "not separated" in row.separation


def test_mixed_families_and_quantisations_are_said(tmp_path):
    m = build_matrix([_run(tmp_path, "a", with_size(knows_share(0.5), 10**8, "llama", "q4_k_m")),
                      _run(tmp_path, "b", with_size(knows_share(0.5), 10**9, "gemma3", "q8_0"))])
    assert any("different families (gemma3, llama)" in n and "not a scaling law" in n for n in m.notes)
    assert any("different quantisations (q4_k_m, q8_0)" in n for n in m.notes)
    assert m.rows[0].across_families
    assert family_notes(["llama", "llama"], ["f16", "f16"]) == []


def test_without_samples_the_best_needs_non_overlapping_cis(tmp_path):
    dirs = [_run(tmp_path, name, with_size(knows_share(share), params))
            for name, share, params in (("a", 0.95, 10**8), ("b", 0.2, 10**9), ("c", 0.3, 10**10))]
    for folder in dirs:
        for path in folder.glob("samples_*.jsonl"):
            path.unlink()
    (row,) = build_matrix(dirs).rows
    assert row.separation.startswith("non-overlapping 95 % CIs") and row.separation.endswith(": separated")
    assert [c.best for c in row.cells] == [True, False, False]
    assert row.trend is None and "no per-item values" in row.trend_note
    # runner-up within the best's CI: not separated
    dirs2 = [_run(tmp_path, name, with_size(knows_share(share), params))
             for name, share, params in (("d", 0.55, 10**8), ("e", 0.5, 10**9))]
    for folder in dirs2:
        for path in folder.glob("samples_*.jsonl"):
            path.unlink()
    (row2,) = build_matrix(dirs2).rows
    assert "not separated" in row2.separation and not any(c.best for c in row2.cells)


def _points(values_by_model, params):
    return [SizePoint(f"m{i}", p, float(np.mean(v)), {str(j): float(x) for j, x in enumerate(v)})
            for i, (v, p) in enumerate(zip(values_by_model, params))]


def test_u_shape_needs_three_sizes_and_a_quadratic_term_whose_ci_excludes_zero():
    rng = np.random.default_rng(1)
    items = 200
    low = (rng.random(items) < 0.2).astype(float)
    high = (rng.random(items) < 0.9).astype(float)
    trend = fit_trend(_points([high, low, high], [10**8, 10**9, 10**10]))
    assert trend is not None and trend.shape == "U-shaped (worst at mid size)"
    assert not trend.inverse  # the ends are equal: no linear trend
    two = fit_trend(_points([high, low], [10**8, 10**9]))
    assert two is not None and two.curvature is None and two.shape is None and two.inverse
    # a rate where lower is better, rising with size, is inverse scaling too
    rising = fit_trend(_points([low, high, high], [10**8, 10**9, 10**10]), higher_is_better=False)
    assert rising is not None and rising.inverse and not rising.improves
    assert fit_trend(_points([low, high], [10**8, 10**8])) is None  # one size: no trend


def test_different_items_are_resampled_independently():
    a = {str(i): float(i % 2) for i in range(40)}
    b = {f"other{i}": 1.0 for i in range(30)}
    trend = fit_trend([SizePoint("a", 10**8, 0.5, a), SizePoint("b", 10**9, 1.0, b)])
    assert trend is not None and "resampled independently" in trend.method and trend.improves


def test_matrix_html_escapes_names(tmp_path):
    size = ModelSize(10**8, "<b>arch</b>", "q4", "<script>alert(1)</script>", "planted")
    m = Matrix([MatrixModel("x/<i>a</i>", "r1", size), MatrixModel("x/b", "r2", None)],
               [MatrixRow("t<", "p", "acc", True, [Cell(0.9, 0.8, 0.95, 10, best=True), None], "sep <x>")],
               ["note <u>"])
    html = render_matrix_html(m)
    for raw in ("<script>alert(1)</script>", "<b>arch</b>", "<i>a</i>", "<u>", "<x>"):
        assert raw not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "<strong>0.9000" in html
    assert "default-src 'none'" in html


def test_gguf_size_reads_parameters_architecture_and_file_type(tmp_path):
    gguf = pytest.importorskip("gguf")
    path = tmp_path / "tiny.gguf"
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_name("tiny test")
    writer.add_file_type(15)  # q4_k_m
    writer.add_tensor("a", np.zeros((3, 4), dtype=np.float32))
    writer.add_tensor("b", np.zeros((5,), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    size = gguf_size(path)
    assert (size.parameters, size.architecture, size.quantisation, size.name) == (17, "llama", "q4_k_m", "tiny test")
    (tmp_path / "bad.gguf").write_bytes(b"GGUF\x03\x00")
    with pytest.raises(LlmassayError, match="bad.gguf: cannot read the GGUF header"):
        gguf_size(tmp_path / "bad.gguf")


def test_cli_assess_with_two_models_writes_each_run_and_the_matrix(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(_REGISTRY, "scripted", "fakes:sized_hashed_backend")
    from llmassay.cli import main

    out = tmp_path / "runs"
    assert main(["assess", "--model", "scripted/llama-135m", "--model", "scripted/gemma3-270m", "--output-path",
                 str(out), "--no-cache", "--probe", "accuracy"]) == 0
    printed = capsys.readouterr().out
    for folder in ("scripted_llama-135m", "scripted_gemma3-270m"):
        assert (out / folder / "report.html").is_file() and list((out / folder).glob("results_*.json"))
    doc = json.loads((out / "matrix.json").read_text())
    assert [m["spec"] for m in doc["models"]] == ["scripted/llama-135m", "scripted/gemma3-270m"]
    assert [m["size"]["parameters"] for m in doc["models"]] == [135_000_000, 270_000_000]
    assert {(r["task"], r["probe"], r["metric"]) for r in doc["rows"]} == {
        ("mmlu_sample", "accuracy", "acc"), ("arith_sample", "accuracy", "exact_match")}
    assert "different families (gemma3, llama)" in printed and "models × metrics" in printed
    assert f"matrix: {out / 'matrix.html'}" in printed and (out / "matrix.html").is_file()
    results = json.loads(next((out / "scripted_llama-135m").glob("results_*.json")).read_text())
    assert results["model"]["size"]["architecture"] == "llama"  # recorded in each run
    # the same model twice is refused in one line, before any work
    assert main(["assess", "--model", "scripted/llama-135m", "--model", "scripted/llama-135m", "--output-path",
                 str(tmp_path / "twice"), "--no-cache", "--probe", "accuracy"]) == 2
    assert "error: --model scripted/llama-135m is given twice" in capsys.readouterr().err
    assert not (tmp_path / "twice").exists()


def test_cli_run_with_one_model_keeps_its_layout(tmp_path, monkeypatch):
    monkeypatch.setitem(_REGISTRY, "scripted", "fakes:sized_hashed_backend")
    from llmassay.cli import main

    assert main(["run", "--model", "scripted/llama-135m", "--tasks", "mmlu_sample", "--limit", "5",
                 "--output-path", str(tmp_path / "one"), "--no-cache"]) == 0
    assert list((tmp_path / "one").glob("results_*.json")) and not (tmp_path / "one" / "matrix.json").exists()
    assert main(["run", "--model", "scripted/llama-135m", "--model", "scripted/llama-1b", "--tasks", "mmlu_sample",
                 "--limit", "5", "--output-path", str(tmp_path / "two"), "--no-cache"]) == 0
    doc = json.loads((tmp_path / "two" / "matrix.json").read_text())
    assert [m["run"] for m in doc["models"]] == [str(tmp_path / "two" / "scripted_llama-135m"),
                                                 str(tmp_path / "two" / "scripted_llama-1b")]
    assert doc["notes"] == []  # one family, one quantisation


def test_a_preference_share_has_no_better_end_so_no_best_and_no_inverse_flag():
    """stereotype_controlled: 0.5 is no preference; a share rising with size is reported as
    rising, never as inverse scaling or improvement, and no model is marked best."""
    from llmassay.report.matrix import _mark_best, direction

    rng = np.random.default_rng(3)
    low, high = (rng.random(100) < 0.2).astype(float), (rng.random(100) < 0.9).astype(float)
    trend = fit_trend(_points([low, high], [10**8, 10**9]), higher_is_better=direction("stereotype_controlled"))
    assert trend is not None and trend.verdict == "rises with size" and not trend.inverse and not trend.improves
    row = MatrixRow("stereotype_pairs", "stereotype", "stereotype_controlled", None,
                    [Cell(0.2, 0.1, 0.3, 100), Cell(0.9, 0.85, 0.95, 100)])
    _mark_best(row, [], [], [{}, {}], 0)
    assert not any(c.best for c in row.cells if c) and "no best marked" in row.separation
    assert direction("acc") is True and direction("flip_rate_mean") is False


def test_a_size_that_cannot_be_read_leaves_the_run_whole(tmp_path, caplog):
    backend = knows_share(0.5)

    def unreadable() -> dict:
        raise LlmassayError("tiny.gguf: cannot read the GGUF header for the model's size (truncated)")

    backend.model_size = unreadable  # type: ignore[attr-defined]
    folder = _run(tmp_path, "x", backend)
    results = json.loads(next(folder.glob("results_*.json")).read_text())
    assert results["model"]["size"] is None and "size is not recorded: tiny.gguf" in caplog.text
