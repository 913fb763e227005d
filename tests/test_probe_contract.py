"""The probe contract: a probe from another package plugs in through the entry-point
group and runs end to end (run, report, compare, rescore) with no edit to llmassay;
options come from `-P`, are checked before any model call, and hash into their own
probe's resume key only."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from fakes import hashed_backend
from llmassay.backends.base import _REGISTRY, register_backend
from llmassay.evaluation import RunConfig, evaluate, split_probe_options
from llmassay.probes import PROBES, probe_class
from llmassay.types import LlmassayError

TOY_PROBE = '''
"""A probe that lives in another package: is the answer longer than `threshold` words?"""
from dataclasses import dataclass

from llmassay.metrics import proportion
from llmassay.probes import Analysis, Probe, SampleMetric, option
from llmassay.types import GenerateRequest


@dataclass(frozen=True)
class ToyOptions:
    threshold: int = option(1, "words an answer must exceed to count as long", minimum=0)


class ToyProbe(Probe):
    name = "toy"
    description = "share of long answers"
    task_types = ("generate_until",)
    Options = ToyOptions
    sample_metrics = {"long": SampleMetric(lambda row: row["long"], "1 if the answer is long")}

    def evaluate(self, task, samples, engine, opts, cfg):
        answers = engine.generate([GenerateRequest(prompt=s.prompt, max_tokens=8) for s in samples])
        return [{"id": s.id, "generation": g.text, "long": len(g.text.split()) > opts.threshold}
                for s, g in zip(samples, answers)]

    def analyse(self, task, rows, opts, cfg):
        return Analysis({"long": proportion([r["long"] for r in rows])}, {"threshold": opts.threshold})
'''


@pytest.fixture
def toy_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A separately 'installed' package: its module and a dist-info with the entry point,
    on sys.path, as `pip install --target` would leave it."""
    site = tmp_path / "site"
    (site / "toyprobe").mkdir(parents=True)
    (site / "toyprobe" / "__init__.py").write_text(textwrap.dedent(TOY_PROBE))
    info = site / "toyprobe-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: toyprobe\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[llmassay.probes]\ntoy = toyprobe:ToyProbe\n")
    monkeypatch.syspath_prepend(str(site))
    return site


@pytest.fixture
def scripted_kind(monkeypatch: pytest.MonkeyPatch) -> None:
    """`--model scripted/<salt>` → a hashed backend with that salt (no model loads)."""
    monkeypatch.setitem(_REGISTRY, "scripted", "fakes:hashed_backend")


def cli(*argv: str) -> int:
    from llmassay.cli import main

    return main(list(argv))


def test_a_probe_from_another_package_runs_end_to_end(tmp_path, toy_package, scripted_kind, capsys):
    assert "toy" in PROBES and probe_class("toy").__module__ == "toyprobe"
    assert cli("probes") == 0
    assert "-P toy.threshold" in capsys.readouterr().out
    common = ("--tasks", "arith_sample", "--limit", "30", "--probe", "toy", "-P", "toy.threshold=1",
              "--cache-path", str(tmp_path / "cache.sqlite"))
    assert cli("run", "--model", "scripted/a", "--output-path", str(tmp_path / "a"), *common) == 0
    assert cli("run", "--model", "scripted/b", "--output-path", str(tmp_path / "b"), *common) == 0
    results = json.loads(next((tmp_path / "a").glob("results_*.json")).read_text())
    rows = [json.loads(line) for line in next((tmp_path / "a").glob("samples_*.jsonl")).read_text().splitlines()]
    long = sum(r["long"] for r in rows)
    assert results["results"]["arith_sample"]["toy"]["long"]["value"] == pytest.approx(long / 30)
    assert results["probes"]["toy"] == {"options": {"threshold": 1}, "schema_version": 1}

    # the report: the generic section, with the probe's details table
    assert cli("report", str(tmp_path / "a")) == 0
    html = (tmp_path / "a" / "report.html").read_text()
    assert 'data-probe="toy"' in html and "threshold" in html

    # compare pairs the declared sample metric by id (a McNemar count of real disagreements)
    assert cli("compare", str(tmp_path / "a"), str(tmp_path / "b"), "--json", str(tmp_path / "cmp.json")) == 0
    paired = json.loads((tmp_path / "cmp.json").read_text())["paired"]
    rows_b = {r["id"]: r for r in map(json.loads, next((tmp_path / "b").glob("samples_*.jsonl")).read_text().splitlines())}
    only_a = sum(r["long"] and not rows_b[r["id"]]["long"] for r in rows)
    assert [(p["metric"], p["n"], p["only_a"]) for p in paired] == [("long", 30, only_a)]

    # rescore splits the declared binary metric by clean and dirty items
    clean = [r["id"] for r in rows[:10]]
    (tmp_path / "clean.txt").write_text("\n".join(clean))
    from llmassay.audit.rescoring import rescore

    scores = {s.metric: s for s in rescore(tmp_path / "a", tmp_path / "clean.txt")["arith_sample"]}
    assert scores["toy/long"].clean.n == 10 and scores["toy/long"].dirty.n == 20
    assert scores["toy/long"].clean.value == pytest.approx(sum(r["long"] for r in rows[:10]) / 10)


def test_bad_options_fail_before_any_model_call(tmp_path, toy_package, capsys):
    backend = hashed_backend()
    cfg = RunConfig(model="test/x", tasks=["arith_sample"], probes=["toy"], output_path=str(tmp_path / "o"),
                    probe_options={"toy.threshold": "-3"})
    with pytest.raises(LlmassayError, match=r"^-P toy\.threshold: -3 must be >= 0$"):
        evaluate(cfg, backend=backend)
    assert backend.asked == []
    # an unsupported task type is refused before the model is asked anything
    cfg = RunConfig(model="test/x", tasks=["mmlu_sample"], probes=["toy"], output_path=str(tmp_path / "o"))
    with pytest.raises(LlmassayError, match="--probe toy: task 'mmlu_sample' is multiple_choice; probe 'toy' needs"):
        evaluate(cfg, backend=backend)
    assert backend.asked == []
    assert cli("run", "--model", "test/x", "--tasks", "arith_sample", "-P", "toy=3") == 2
    assert "expected PROBE.KEY=VALUE" in capsys.readouterr().err


def test_options_go_to_their_own_probe_and_are_refused_for_probes_not_in_the_run():
    split = split_probe_options({"repeats": 3, "structured.modes": "strict"}, ["brittleness", "structured"])
    assert split == {"brittleness": {"repeats": 3}, "structured": {"modes": "strict"}}
    with pytest.raises(LlmassayError, match="option 'modes': it is an option of structured, and --probe is accuracy"):
        split_probe_options({"modes": "strict"}, ["accuracy"])
    with pytest.raises(LlmassayError, match=r"-P structured\.modes: probe 'structured' is not in this run"):
        split_probe_options({"structured.modes": "strict"}, ["accuracy"])
    with pytest.raises(LlmassayError, match="unknown probe 'nope'"):
        split_probe_options({"nope.x": 1}, ["accuracy"])


def test_another_probes_options_do_not_change_a_probes_resume_key(tmp_path):
    """`-P brittleness.repeats` must not invalidate the accuracy probe's finished rows."""
    backend = hashed_backend()
    common = dict(model="test/x", tasks=["arith_sample"], output_path=str(tmp_path / "o"), use_cache=False)
    first = evaluate(RunConfig(probes=["accuracy"], limit=5, **common), backend=backend)
    asked = len(backend.asked)
    jobs = [("arith_sample", "accuracy", 5), ("mmlu_sample", "brittleness", 2)]
    again = evaluate(RunConfig(probes=["accuracy", "brittleness"], jobs=jobs, probe_options={"brittleness.repeats": 4},
                               **common), backend=backend)
    new_prompts = {getattr(r, "prompt", None) or getattr(r, "context", None) for r in backend.asked[asked:]}
    assert not new_prompts & {s["prompt"] for s in first.probe_results[0].samples}  # accuracy: nothing re-asked
    assert "5 of 5 samples resumed" in again.results["notes"]["arith_sample/accuracy"][0]
    assert again.results["probes"]["brittleness"]["options"]["repeats"] == 4


def test_builtin_registry_is_lazy():
    import subprocess
    import sys

    code = ("import sys, llmassay.probes, llmassay.cli; "
            "print(sorted(m for m in sys.modules if m.startswith(('llmassay.probes.', 'torch', 'ray', 'matplotlib'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "['llmassay.probes._options', 'llmassay.probes._registry', 'llmassay.probes.base']"


def test_rows_written_by_another_version_or_row_schema_are_not_resumed(tmp_path, monkeypatch):
    import llmassay.evaluation as ev
    from llmassay.probes.accuracy import AccuracyProbe

    backend = hashed_backend()
    cfg = RunConfig(model="test/x", tasks=["arith_sample"], limit=4, output_path=str(tmp_path / "o"), use_cache=False)
    evaluate(cfg, backend=backend)
    asked = len(backend.asked)
    assert "resumed" in evaluate(cfg, backend=backend).results["notes"]["arith_sample/accuracy"][0]
    assert len(backend.asked) == asked  # same version: nothing asked again
    monkeypatch.setattr(ev, "llmassay_version", lambda: "99.0")
    assert "arith_sample/accuracy" not in evaluate(cfg, backend=backend).results["notes"]
    assert len(backend.asked) == asked + 4  # an upgrade recomputes instead of reusing old rows
    monkeypatch.setattr(AccuracyProbe, "schema_version", AccuracyProbe.schema_version + 1)
    evaluate(cfg, backend=backend)
    assert len(backend.asked) == asked + 8  # so does a probe that bumps its row schema
