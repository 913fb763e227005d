"""`llmassay assess`: every probe's preset in one run, and a summary card whose verdicts
follow planted truth (scripted backends, no model)."""

from __future__ import annotations

import json
import re

import pytest

from fakes import answer_key_backend, position_bias_backend
from llmassay.assess import assess_config
from llmassay.backends.base import _REGISTRY
from llmassay.evaluation import evaluate
from llmassay.probes import probe_class
from llmassay.probes._registry import probe_targets
from llmassay.report.html import write_report
from llmassay.tasks.loader import load_task
from llmassay.types import LlmassayError


def test_quick_plan_is_each_probes_own_preset_and_overrides_win(tmp_path):
    cfg = assess_config("test/x", str(tmp_path), "quick", overrides={"brittleness.repeats": "2"})
    expected = [(task, name, probe_class(name).presets["quick"].limit)
                for name in probe_targets() if "quick" in probe_class(name).presets
                for task in probe_class(name).presets["quick"].tasks]
    assert {"accuracy", "brittleness", "structured"} <= {name for _, name, _ in expected}
    assert cfg.jobs == expected
    assert cfg.probe_options["brittleness.repeats"] == "2"
    assert cfg.probe_options["structured.modes"] == "strict,extract,repair,constrained"  # the preset's own option
    with pytest.raises(LlmassayError, match="unknown probe 'toy'"):
        assess_config("test/x", str(tmp_path), "quick", probes=["toy"])


def _assess(tmp_path, backend, **kwargs):
    cfg = assess_config("test/x", str(tmp_path / "run"), "quick", use_cache=False, **kwargs)
    return evaluate(cfg, backend=backend)


def test_a_position_biased_model_is_called_brittle_and_at_chance(tmp_path):
    """Always the first option shown: its accuracy is the share of A in the key, and
    rotating the options moves it — the card must say both."""
    out = _assess(tmp_path, position_bias_backend(slot=0), probes=["accuracy", "brittleness"])
    card = {(line["probe"], line["task"]): line for line in out.results["summary"]}
    bias = card[("brittleness", "mmlu_sample")]
    # 13 measured variants per item, of which the 3 option rotations (and only they) move the pick
    assert (bias["metric"], bias["value"], bias["n"]) == ("flip_rate_mean", pytest.approx(3 / 13), 6)
    assert bias["level"] == "bad" and bias["verdict"].startswith("brittle: the answer changes under 23% of prompt")
    shares = out.results["results"]["mmlu_sample"]["brittleness"]
    assert shares["position_share[0]"]["value"] == 1.0  # the planted bias, recovered
    acc = card[("accuracy", "mmlu_sample")]
    key_a = sum(s.target == 0 for s in load_task("mmlu_sample").samples[:20]) / 20
    assert acc["metric"] == "acc" and acc["value"] == pytest.approx(key_a)
    assert acc["level"] in ("bad", "warn") and "chance" in acc["verdict"]


def test_a_model_that_knows_the_key_is_called_stable(tmp_path):
    key = {s.prompt: "ABCD"[int(s.target)] for s in load_task("mmlu_sample").samples[:40]}
    out = _assess(tmp_path, answer_key_backend(lambda p: key.get(p)), probes=["accuracy"])
    (line,) = [x for x in out.results["summary"] if x["task"] == "mmlu_sample"]
    assert (line["value"], line["level"], line["n"]) == (1.0, "info", 20)


def test_report_opens_with_the_card_linking_to_each_section(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(_REGISTRY, "scripted", "fakes:hashed_backend")
    from llmassay.cli import main

    assert main(["assess", "--model", "scripted/x", "--output-path", str(tmp_path / "run"), "--no-cache",
                 "--probe", "accuracy,brittleness,structured"]) == 0
    printed = capsys.readouterr().out
    assert "summary" in printed and "prompt brittleness" in printed and "structured output" in printed
    assert "schema_valid[strict]" in printed  # metric names are text, not rich markup
    report = tmp_path / "run" / "report.html"
    assert f"report: {report}" in printed
    html = report.read_text()
    card = html[html.index('id="report-card"'):html.index('id="run"')]
    links = re.findall(r'<a href="#(section-\d+)">', card)
    results = json.loads(next((tmp_path / "run").glob("results_*.json")).read_text())
    assert len(links) == len(results["summary"]) >= 4  # accuracy ×2 tasks, brittleness, structured, newer presets
    assert {"accuracy", "brittleness", "structured"} <= {line["probe"] for line in results["summary"]}
    assert all(f'id="{anchor}"' in html for anchor in links)
    assert html.index('id="report-card"') < html.index('id="run"')  # the first thing on the page
    # a quick assessment says so, on the card and at the terminal, with the command for the full one
    assert "llmassay assess --model scripted/x --full" in card and "--full" in printed
    assert set(results["timing"]) == {f"{t}/{p}" for t, p, _ in results["config"]["jobs"]}
    assert all(v["wall_s"] >= 0 and v["n"] > 0 for v in results["timing"].values())


def test_card_text_is_escaped(tmp_path):
    out = _assess(tmp_path, position_bias_backend(slot=0), probes=["accuracy"])
    path = out.results_path
    doc = json.loads(path.read_text())
    doc["summary"][0]["verdict"] = "<script>alert(1)</script>"
    path.write_text(json.dumps(doc))
    html = write_report(path).read_text()
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
