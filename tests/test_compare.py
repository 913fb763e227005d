"""`llmassay compare`: paired deltas between two real runs on different models, checked
against values recomputed from the samples files; refusal on different task content."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from test_report_runs import GEMMA_LIMIT, LIMIT, run_dir

from llmassay.cli import main
from llmassay.metrics import mcnemar_exact
from llmassay.report.compare import compare_runs, paired_delta
from llmassay.types import LlmassayError


def samples(path: Path, probe: str) -> dict[str, dict]:
    (file,) = sorted(path.glob("samples_*.jsonl"))
    rows = [json.loads(line) for line in file.read_text().splitlines()]
    return {r["id"]: r for r in rows if r["probe"] == probe}


def edit_results(src: Path, dst: Path, change) -> Path:
    shutil.copytree(src, dst)
    path = max(dst.glob("results_*.json"))
    doc = json.loads(path.read_text())
    change(doc)
    path.write_text(json.dumps(doc))
    return dst


@pytest.fixture
def two_models(request) -> tuple[Path, Path]:
    return run_dir("smollm2", request), run_dir("gemma3", request)


def test_paired_delta_values():
    d = paired_delta("t", "p", "acc", [1, 1, 0, 0, 1], [0, 1, 1, 1, 1], seed=0)
    assert (d.n, d.a, d.b, d.delta) == (5, 0.6, 0.8, pytest.approx(0.2))
    assert (d.only_a, d.only_b, d.mcnemar_p) == (1, 2, mcnemar_exact(1, 2))
    assert d.ci_low <= d.delta <= d.ci_high and d.ci_low >= -1 and d.ci_high <= 1
    identical = paired_delta("t", "p", "acc", [1, 0, 1], [1, 0, 1])
    assert (identical.delta, identical.ci_low, identical.ci_high, identical.mcnemar_p) == (0.0, 0.0, 0.0, 1.0)
    continuous = paired_delta("t", "p", "tokens", [10.0, 20.0], [12.0, 21.0])
    assert continuous.delta == pytest.approx(1.5) and continuous.mcnemar_p is None and continuous.only_a is None


def test_compare_two_models_gives_paired_deltas_with_cis(two_models):
    a, b = two_models
    cmp = compare_runs(a, b)
    assert "llamacpp/smollm2-135m" in cmp.a and "llamacpp/gemma3-270m" in cmp.b
    by_name = {(d.probe, d.metric): d for d in cmp.paired}
    rows_a, rows_b = samples(a, "accuracy"), samples(b, "accuracy")
    common = [i for i in rows_a if i in rows_b]
    assert len(rows_a) == LIMIT and len(common) == GEMMA_LIMIT < LIMIT  # paired on the common ids only
    for metric in ("acc", "acc_norm", "acc_gen"):
        d = by_name[("accuracy", metric)]
        xa = np.array([rows_a[i][metric] for i in common], dtype=float)
        xb = np.array([rows_b[i][metric] for i in common], dtype=float)
        assert d.n == GEMMA_LIMIT and d.a == xa.mean() and d.b == xb.mean() and d.delta == pytest.approx(xb.mean() - xa.mean())
        assert (d.only_a, d.only_b) == (int(((xa == 1) & (xb == 0)).sum()), int(((xa == 0) & (xb == 1)).sum()))
        assert d.mcnemar_p == mcnemar_exact(d.only_a, d.only_b)
        assert d.ci_low <= d.delta <= d.ci_high
    brittle_a, brittle_b = samples(a, "brittleness"), samples(b, "brittleness")
    flip = by_name[("brittleness", "flip_rate[options_rot1]")]
    expected = np.mean([
        (brittle_b[i]["variants"]["options_rot1"]["pred"] != brittle_b[i]["variants"]["canonical"]["pred"])
        - (brittle_a[i]["variants"]["options_rot1"]["pred"] != brittle_a[i]["variants"]["canonical"]["pred"])
        for i in common
    ])
    assert flip.delta == pytest.approx(expected)
    assert ("brittleness", "acc[canonical]") in by_name
    results_a = json.loads(max(a.glob("results_*.json")).read_text())["results"]["mmlu_sample"]["brittleness"]
    results_b = json.loads(max(b.glob("results_*.json")).read_text())["results"]["mmlu_sample"]["brittleness"]
    # every id of B is in A: B's paired mean is the probe's own reported mean
    assert by_name[("brittleness", "sensitivity_mean")].b == pytest.approx(results_b["sensitivity_mean"]["value"])
    unpaired = {d.metric: d for d in cmp.unpaired}
    assert {"spread", "pss", "posix", "position_share[0]"} <= set(unpaired)
    assert unpaired["spread"].delta == pytest.approx(results_b["spread"]["value"] - results_a["spread"]["value"])
    assert cmp.only_a == cmp.only_b == [] and cmp.warnings == []


def test_compare_refuses_different_task_content_unless_forced(two_models, tmp_path):
    a, b = two_models
    changed = edit_results(b, tmp_path / "b", lambda d: d["tasks"]["mmlu_sample"].update(content_hash="0" * 64))
    with pytest.raises(LlmassayError, match=r"task 'mmlu_sample' differs between the runs .*pass --force"):
        compare_runs(a, changed)
    forced = compare_runs(a, changed, force=True)
    assert forced.paired and forced.warnings == ["mmlu_sample: content hashes differ, compared anyway (--force)"]


def test_metrics_in_only_one_run_are_listed_separately(two_models, tmp_path):
    a, b = two_models

    def change(doc):
        metrics = doc["results"]["mmlu_sample"]["accuracy"]
        metrics["new_metric"] = metrics.pop("acc_norm")

    cmp = compare_runs(a, edit_results(b, tmp_path / "b", change))
    assert cmp.only_a == ["mmlu_sample / accuracy / acc_norm"]
    assert cmp.only_b == ["mmlu_sample / accuracy / new_metric"]
    assert ("accuracy", "acc_norm") not in {(d.probe, d.metric) for d in cmp.paired}


def test_cli_compare_prints_and_writes_html_and_json(two_models, tmp_path, capsys):
    a, b = two_models
    html, js = tmp_path / "cmp.html", tmp_path / "cmp.json"
    assert main(["compare", str(a), str(b), "--html", str(html), "--json", str(js)]) == 0
    printed = capsys.readouterr().out
    assert "Δ B−A" in printed and "McNemar p" in printed and "acc_norm" in printed and f"written: {html}" in printed
    doc = json.loads(js.read_text())
    acc = next(d for d in doc["paired"] if d["probe"] == "accuracy" and d["metric"] == "acc")
    assert f"{acc['delta']:+.4f}" in html.read_text() and 'id="paired-table"' in html.read_text()
    assert re.search(r"<script(?! type=)", html.read_text()) is None  # no script at all

    assert main(["compare", str(a), str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "missing: no such run directory" in err and "\n" not in err


def test_runs_without_a_common_task_are_refused(request, two_models):
    with pytest.raises(LlmassayError, match="no task in common"):
        compare_runs(two_models[0], run_dir("hostile", request))


# -- what must not be paired (scripted backends: no model) ------------------------------
def _scripted_run(tmp_path, name, salt="", **options):
    from fakes import hashed_backend
    from llmassay.evaluation import RunConfig, evaluate

    out = tmp_path / name
    evaluate(RunConfig(model="test/x", tasks=["mmlu_sample"], probes=["brittleness"], limit=6, output_path=str(out),
                       use_cache=False, probe_options={"perturbations": "case_upper", **options}), backend=hashed_backend(salt))
    return out


def test_runs_with_different_probe_options_are_refused_unless_forced(tmp_path):
    a = _scripted_run(tmp_path, "a", scoring="acc")
    b = _scripted_run(tmp_path, "b", salt="other", scoring="acc_norm")
    with pytest.raises(LlmassayError) as info:
        compare_runs(a, b)
    assert str(info.value) == ("mmlu_sample / brittleness: the runs used different options "
                               "(-P brittleness.scoring: 'acc' vs 'acc_norm'): their metrics measure different things; "
                               "pass --force to compare anyway")
    forced = compare_runs(a, b, force=True)
    assert any("options differ (-P brittleness.scoring" in w for w in forced.warnings)
    same = compare_runs(a, _scripted_run(tmp_path, "c", salt="other", scoring="acc"))
    assert not same.warnings and same.paired


def test_a_missing_content_hash_is_warned_about(tmp_path):
    a, b = _scripted_run(tmp_path, "a"), _scripted_run(tmp_path, "b", salt="other")
    results = next(b.glob("results_*.json"))
    doc = json.loads(results.read_text())
    del doc["tasks"]["mmlu_sample"]["content_hash"]
    results.write_text(json.dumps(doc))
    warnings = compare_runs(a, b).warnings
    assert warnings == ["mmlu_sample: a results file records no content hash for this task, so its items cannot be checked"]


def test_an_undetected_difference_says_what_the_run_could_have_seen():
    # planted: 40 items, A and B disagree on 8 (4 each way): Var(d) = 8/39, no difference
    a = [1] * 4 + [0] * 4 + [1] * 16 + [0] * 16
    b = [0] * 4 + [1] * 4 + [1] * 16 + [0] * 16
    d = paired_delta("t", "p", "acc", a, b)
    var = np.var(np.array(b) - np.array(a), ddof=1)
    assert d.mde == pytest.approx((1.959964 + 0.841621) * np.sqrt(var / 40), rel=1e-5)
    note = d.power_note()
    assert note is not None and f"could have seen a difference of {d.mde:.3g}" in note and "n = 40" in note
    # a detected difference needs no such note
    assert paired_delta("t", "p", "acc", [0] * 30, [1] * 30).power_note() is None
    assert paired_delta("t", "p", "acc", [1], [1]).power_note().endswith("no difference could have been")
