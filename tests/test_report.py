"""The HTML report without a browser: what it contains, read back from real runs, its
escaping of untrusted text, the per-probe hooks, and one-line errors on bad run dirs."""

from __future__ import annotations

import json
import re
import shutil
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path

import pytest
from test_report_runs import HOSTILE, STRUCTURED_LIMIT, run_dir

from llmassay.cli import main
from llmassay.report.html import build_report, script_json, write_report
from llmassay.report.rundir import load_run
from llmassay.report.section import SectionContext, hook
from llmassay.report.sections import brittleness, generic, structured
from llmassay.report.sections.brittleness import picked
from llmassay.types import LlmassayError

SAMPLES_JSON = re.compile(r'<script type="application/json" id="llmassay-samples">(.*?)</script>', re.DOTALL)


class Elements(HTMLParser):
    """Tags as a browser's tokenizer sees them (script contents are raw text)."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def count(self, tag: str) -> int:
        return sum(t == tag for t, _ in self.tags)


def embedded_rows(html: str) -> list[dict]:
    (payload,) = SAMPLES_JSON.findall(html)
    return json.loads(payload)


def results_of(path: Path) -> dict:
    return json.loads(max(path.glob("results_*.json")).read_text())


def samples_of(path: Path) -> list[dict]:
    (file,) = sorted(path.glob("samples_*.jsonl"))
    return [json.loads(line) for line in file.read_text().splitlines()]


@pytest.fixture
def smollm2_run(request) -> Path:
    return run_dir("smollm2", request)


def test_report_of_a_real_run_has_header_summary_plots_and_every_sample(smollm2_run):
    html = build_report(load_run(smollm2_run))
    results = results_of(smollm2_run)
    for value in (results["model"]["spec"], results["model"]["sha256"], results["git_commit"] or "?",
                  results["versions"]["llmassay"], results["config_hash"], f"{results['tokens_processed']:,}"):
        assert value in html
    n_metrics = sum(len(m) for probes in results["results"].values() for m in probes.values())
    summary = html.split('id="summary-table"')[1].split("</table>")[0]
    assert summary.count("<tr>") == n_metrics + 1  # plus the header row
    acc = results["results"]["mmlu_sample"]["accuracy"]["acc"]
    assert f"{acc['value']:.4f}</td><td class=\"num\">[{acc['ci_low']:.4f}, {acc['ci_high']:.4f}]" in summary

    sections = html.split('class="card probe-section"')[1:]
    assert [s.split('data-probe="')[1].split('"')[0] for s in sections] == ["accuracy", "brittleness"]
    plots = [re.findall(r'data-plot="([^"]+)"', s) for s in sections]
    assert plots[0] == ["accuracy by scoring mode", "scoring-mode agreement"]
    assert plots[1] == ["accuracy per prompt variant", "flip rate vs the canonical prompt", "per-item sensitivity",
                        "option-position bias (picks per slot over rotations)"]
    for svg in re.findall(r"<svg.*?</svg>", html, re.DOTALL):
        ET.fromstring(svg)  # each plot is well-formed SVG

    rows = embedded_rows(html)
    samples = samples_of(smollm2_run)
    brittle_samples = [r for r in samples if r["probe"] == "brittleness"]
    n_variants = len(brittle_samples[0]["variants"])
    assert len(rows) == 5 + 5 * n_variants
    exact = {(r["id"], r["v"]): (r["prompt"], r["out"], r["c"]) for r in rows if r["p"] == "brittleness"}
    for sample in brittle_samples:
        for name, v in sample["variants"].items():
            assert exact[(sample["id"], name)] == (v["prompt"], picked(v), v["correct"])  # the pick, not ""
    for sample in (r for r in samples if r["probe"] == "accuracy"):
        (row,) = [r for r in rows if r["p"] == "accuracy" and r["id"] == sample["id"]]
        assert (row["prompt"], row["out"], row["c"]) == (sample["prompt"], sample["generation"], sample["acc"])


def test_report_is_deterministic_and_self_contained(smollm2_run):
    run = load_run(smollm2_run)
    html = build_report(run)
    assert build_report(run) == html
    elements = Elements(html)
    assert elements.count("script") == 2 and elements.count("link") == 0 and elements.count("img") == 0
    assert not re.search(r'(src|href)="(https?:)?//', html)
    assert "default-src 'none'" in html.replace("&#39;", "'")


def test_a_results_file_without_its_samples_still_reports(smollm2_run, tmp_path):
    results = tmp_path / max(smollm2_run.glob("results_*.json")).name
    shutil.copy(max(smollm2_run.glob("results_*.json")), results)
    run = load_run(results)  # a results file works as well as its directory
    assert run.missing_samples == ["mmlu_sample"] and run.samples == {}
    html = build_report(run)
    assert "mmlu_sample: no samples file next to the results file" in html
    assert embedded_rows(html) == [] and "accuracy per prompt variant" in html


def test_embedded_json_cannot_close_the_script_or_break_javascript():
    value = {"out": "</script><script>alert(1)</script> & <!-- \u2028\u2029"}
    text = str(script_json(value))
    assert not set(text) & {"<", ">", "&", "\u2028", "\u2029"}
    assert json.loads(text) == value


def test_hostile_model_output_and_names_are_escaped_everywhere(request, tmp_path):
    source = run_dir("hostile", request)
    run = tmp_path / "run"
    shutil.copytree(source, run)
    results_path = max(run.glob("results_*.json"))
    doc = json.loads(results_path.read_text())
    # A hand-edited or foreign results file: hostile text in names, notes and details too.
    (task,) = doc["results"]
    metrics = doc["results"][task]["accuracy"]
    metrics[f"acc[{HOSTILE}]"] = metrics["acc[$x$]"] = dict(metrics["acc"])
    doc["notes"] = {f"{task}/accuracy": [HOSTILE]}
    doc["details"] = {task: {"accuracy": {"why": HOSTILE, "rows": [{"k": HOSTILE}]}}}
    doc["model"]["spec"] = HOSTILE
    results_path.write_text(json.dumps(doc))

    html = build_report(load_run(run))
    elements = Elements(html)
    assert elements.count("script") == 2 and elements.count("img") == 0
    assert "<script>alert" not in html and "<img" not in html
    for svg in re.findall(r"<svg.*?</svg>", html, re.DOTALL):
        assert not [e for e in ET.fromstring(svg).iter() if e.tag.split("}")[-1] in ("script", "foreignObject")]
    assert "acc[$x$]" in html  # drawn literally, not as mathtext
    rows = embedded_rows(html)
    assert rows and all(r["out"] == HOSTILE and r["prompt"].count(HOSTILE) == 1 for r in rows)


def test_sections_are_found_by_probe_name_with_a_generic_fallback():
    assert hook("brittleness", "build") is brittleness.build
    # per-sample values come from the probe's declared sample_metrics (the probe contract)
    from llmassay.probes import probe_class, sample_values

    row = {"modes": {"strict": {"parse_valid": True, "schema_valid": False}}}
    assert hook("structured", "paired_values")(row) == sample_values(probe_class("structured").sample_metrics, row)
    for name in ("nosuch", "../generic", "generic", "__init__"):
        assert hook(name, "build") is generic.build
    with pytest.raises(ValueError):
        hook("accuracy", "nosuch_hook")


def test_generic_section_plots_metric_families_and_tabulates_details():
    m = {"value": 0.5, "ci_low": 0.25, "ci_high": 0.75, "n": 8}
    ctx = SectionContext(
        "t", "newprobe", {"hit[a]": m, "hit[b]": m, "lone[x]": m, "score": m},
        {"n": 3, "table": [{"k": "a", "v": 1.0}], "ci": {"value": 0.1, "ci_low": 0.0, "ci_high": 0.2}, "deep": {"x": [1]}},
        [{"id": "1", "prompt": "p", "generation": "g", "exact_match": True, "other": 2}],
    )
    section = hook("newprobe", "build")(ctx)
    assert [p.title for p in section.plots] == ["hit by key"]
    assert [t.title for t in section.tables] == ["details", "table"]
    assert section.tables[0].rows == [["n", "3"], ["ci", "0.1000 [0.0000, 0.2000]"]]
    assert section.raw == {"deep": {"x": [1]}}
    (row,) = hook("newprobe", "browser_rows")(ctx)
    assert (row.prompt, row.output, row.correct, row.json_valid) == ("p", "g", True, None)
    assert hook("newprobe", "paired_values")(ctx.rows[0]) == {"exact_match": 1.0}


def test_structured_section_reads_validity_by_mode():
    m = {"value": 0.5, "ci_low": 0.2, "ci_high": 0.8, "n": 4}
    metrics = {f"{k}[{mode}]": m for k in ("parse_valid", "schema_valid", "field_acc", "tokens") for mode in ("strict", "repair")}
    row = {"id": "p1", "prompt": "Text: x\nJSON:", "gold": {"a": 1}, "output": {"text": "{\"a\": 1"},
           "modes": {"strict": {"parse_valid": False, "schema_valid": False, "field_acc": 0.0},
                     "repair": {"parse_valid": True, "schema_valid": True, "field_acc": 1.0, "parsed": {"a": 1}}},
           "instructions": {"0": {"strict_parse_valid": False, "extract_schema_valid": True}}}
    ctx = SectionContext("json_sample", "structured", metrics, {}, [row])
    assert [p.title for p in structured.build(ctx).plots] == ["JSON validity by mode", "output tokens per item by mode"]
    rows = structured.browser_rows(ctx)
    assert [(r.variant, r.json_valid, r.correct, r.output) for r in rows] == [
        ("strict", False, False, '{"a": 1'), ("repair", True, True, '{"a": 1')]
    paired = hook("structured", "paired_values")(row)
    assert (paired["parse_valid[repair]"], paired["parse_valid[strict]"]) == (1.0, 0.0)
    assert (paired["instruction_schema_valid[0]"], paired["instruction_parse_valid[0]"]) == (1.0, 0.0)


@pytest.mark.slow
def test_structured_run_report(request):
    run = run_dir("structured", request)
    html = build_report(load_run(run))
    assert "JSON validity by mode" in html
    rows = embedded_rows(html)
    modes = {(r["id"], mode): e for r in samples_of(run) for mode, e in r["modes"].items()}
    assert len(rows) == len(modes) == STRUCTURED_LIMIT * 3
    for r in rows:
        assert r["j"] == modes[(r["id"], r["v"])]["parse_valid"]


def test_cli_report_and_run_report_flag(tmp_path, capsys, smollm2_run):
    assert main(["report", str(smollm2_run), "--output", str(tmp_path / "r.html")]) == 0
    assert f"report: {tmp_path / 'r.html'}" in capsys.readouterr().out
    assert (tmp_path / "r.html").read_text().startswith("<!DOCTYPE html>")
    out = tmp_path / "run"
    code = main(["run", "--model", "llamacpp/smollm2-135m", "--tasks", "mmlu_sample", "--limit", "2",
                 "--metrics", "acc", "--output-path", str(out), "--report"])
    assert code == 0
    printed = capsys.readouterr().out
    assert f"report: {out / 'report.html'}" in printed
    assert "cached 8" in printed  # the smollm2 run's requests: no model time here
    assert "accuracy by scoring mode" in (out / "report.html").read_text()


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (lambda d: None, "no results_*.json in this directory"),
        (lambda d: (d / "results_x.json").write_text("{nope"), "results_x.json: invalid JSON"),
        (lambda d: (d / "results_x.json").write_text("[]"), "expected a JSON object"),
        (lambda d: (d / "results_x.json").write_text('{"results": {"t": {"p": {"acc": {"value": 1}}}}}'),
         "field 'results.t.p.acc.ci_low' is missing or not a number"),
        (lambda d: ((d / "results_x.json").write_text('{"results": {"t": {}}}'),
                    (d / "samples_t_x.jsonl").write_text('{"id": 1}\n{bad\n')), "samples_t_x.jsonl:2: invalid JSON"),
    ],
)
def test_bad_run_dirs_are_one_line_errors(tmp_path, capsys, setup, message):
    setup(tmp_path)
    with pytest.raises(LlmassayError, match=re.escape(message)):
        write_report(tmp_path)
    assert main(["report", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and message in err and "\n" not in err
    assert not (tmp_path / "report.html").exists()
