"""`llmassay watermark zeroshot` on a toy language model with planted statistics (no model)."""

from __future__ import annotations

import json

import pytest

from fakes import ToyLMBackend
from llmassay.cli import main


@pytest.fixture
def toylm(monkeypatch):
    lm = ToyLMBackend()
    monkeypatch.setattr("llmassay.backends.base.load_backend", lambda spec, **kwargs: lm)
    return lm


def write(path, rows):
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return path


def test_labelled_texts_give_each_detectors_auroc(tmp_path, toylm, capsys):
    rows = [{"text": toylm.write(30, "mode", i), "label": "machine"} for i in range(12)]
    rows += [{"text": toylm.write(30, "tail", 100 + i), "label": "human"} for i in range(12)]
    out = tmp_path / "zs.json"
    rc = main(["watermark", "zeroshot", str(write(tmp_path / "t.jsonl", rows)), "--model", "x/y", "--no-cache",
               "--output", str(out)])
    assert rc == 0
    record = json.loads(out.read_text())
    assert record["n_machine"] == record["n_human"] == 12
    assert {d: a["value"] for d, a in record["auroc"].items()} == {"likelihood": 1.0, "logrank": 1.0, "fastdetectgpt": 1.0}
    assert [t["label"] for t in record["texts"]] == ["machine"] * 12 + ["human"] * 12
    assert "fastdetectgpt" in capsys.readouterr().out


def test_unlabelled_texts_are_set_against_bundled_human_spans(tmp_path, toylm):
    rows = [{"text": toylm.write(30, "mode", i)} for i in range(10)]
    out = tmp_path / "zs.json"
    rc = main(["watermark", "zeroshot", str(write(tmp_path / "t.jsonl", rows)), "--model", "x/y", "--no-cache",
               "--baseline", "logrank", "--output", str(out)])
    record = json.loads(out.read_text())
    assert rc == 0 and record["n_human"] == 10 and "News from Nowhere" in record["human_text"]
    assert set(record["auroc"]) == {"logrank"} and record["auroc"]["logrank"]["value"] > 0.9


@pytest.mark.parametrize("rows, args, message", [
    ([{"text": "t1 t2", "label": "machine"}, {"text": "t3 t4"}], [], "t.jsonl:2: no 'label'"),
    ([{"text": "t1 t2", "label": "robot"}], [], "t.jsonl:1: label 'robot'"),
    ([{"text": "t1 t2", "label": "machine"}], [], "both machine and human"),
    ([{"body": "t1"}], [], "t.jsonl:1: no non-empty string field 'text'"),
    ([{"text": "t1"}], ["--baseline", "detectgpt"], "--baseline 'detectgpt'"),
])
def test_bad_input_is_one_line_naming_the_cause(tmp_path, toylm, capsys, rows, args, message):
    rc = main(["watermark", "zeroshot", str(write(tmp_path / "t.jsonl", rows)), "--model", "x/y", "--no-cache", *args])
    err = capsys.readouterr().err
    assert rc != 0 and message in err and len(err.strip().splitlines()) == 1
