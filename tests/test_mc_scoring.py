"""MC scoring modes end to end through the accuracy probe, on planted log-likelihoods
where summed, per-character (acc_norm) and per-byte (acc_bytes) scoring disagree."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from llmassay.engine.engine import Engine
from llmassay.engine.store import SampleLog
from llmassay.probes import ProbeConfig, run_probe
from llmassay.probes._mc import MCScore
from llmassay.probes.accuracy import AccuracyProbe
from llmassay.tasks.loader import TaskError, load_task
from llmassay.types import LoglikelihoodResult

CHOICES = ["日本", "Japan"]  # 2 characters / 6 bytes, 5 / 5
# question → (planted log-likelihoods of " 日本", " Japan"; target; expected pred, pred_norm, pred_bytes)
PLANTED = {
    "q1": ((-3.0, -6.0), 1, (0, 1, 0)),  # per char -1.5 vs -1.2; per byte -0.5 vs -1.2
    "q2": ((-3.0, -6.0), 0, (0, 1, 0)),
    "q3": ((-7.0, -6.0), 1, (1, 1, 0)),  # per byte -1.17 vs -1.2: bytes alone pick 日本
}


class Planted:
    """Test-only backend: each question's log-likelihoods are fixed in advance."""

    name = "test/planted"

    def loglikelihood(self, reqs):
        out = []
        for r in reqs:
            lls = PLANTED[r.context][0]
            out.append(LoglikelihoodResult(lls[CHOICES.index(r.continuation.strip())], False, 1, 1))
        return out

    def generate(self, reqs):
        raise AssertionError("no generation is asked for")

    def tokenize(self, text):
        return list(text.encode())

    def fingerprint(self):
        return {"backend": "test-planted"}


def write_task(tmp_path: Path, metrics: str) -> Path:
    docs = "".join(json.dumps({"id": q, "q": q, "label": p[1]}) + "\n" for q, p in PLANTED.items())
    (tmp_path / "d.jsonl").write_text(docs, encoding="utf-8")
    path = tmp_path / "t.yaml"
    path.write_text(
        "task: t\ndataset_path: json\ndataset_kwargs:\n  data_files: d.jsonl\noutput_type: multiple_choice\n"
        "doc_to_text: '{{q}}'\ndoc_to_choice: ['日本', 'Japan']\ndoc_to_target: label\n"
        f"metric_list: {metrics}\n",
        encoding="utf-8",
    )
    return path


def test_accuracy_probe_reports_acc_norm_by_characters_and_acc_bytes_by_bytes(tmp_path):
    task = load_task(str(write_task(tmp_path, "[acc, acc_norm, acc_bytes]")))
    result = run_probe(AccuracyProbe(), task, Engine(Planted()), ProbeConfig(), SampleLog(tmp_path / "log.jsonl"))
    rows = {r["id"]: r for r in result.samples}
    for q, (_, _, (pred, pred_norm, pred_bytes)) in PLANTED.items():
        assert (rows[q]["pred"], rows[q]["pred_norm"], rows[q]["pred_bytes"]) == (pred, pred_norm, pred_bytes)
    m = {k: v.value for k, v in result.metrics.items()}
    assert m == pytest.approx({"acc": 2 / 3, "acc_norm": 2 / 3, "acc_bytes": 1 / 3})


def test_acc_bytes_is_only_computed_when_asked_for(tmp_path):
    task = load_task(str(write_task(tmp_path, "[acc, acc_norm]")))
    result = run_probe(AccuracyProbe(), task, Engine(Planted()), ProbeConfig(), SampleLog(tmp_path / "log.jsonl"))
    assert "acc_bytes" not in result.metrics and "pred_bytes" not in result.samples[0]


def test_scoring_mode_names_choose_the_normalisation():
    score = MCScore(loglikelihoods=(-3.0, -6.0), n_tokens=(1, 1), is_greedy=(False, False))
    picks = {mode: score.prediction(mode, CHOICES) for mode in ("acc", "acc_norm", "acc_bytes")}
    assert picks == {"acc": 0, "acc_norm": 1, "acc_bytes": 0}


def test_unknown_metric_names_the_task_file(tmp_path):
    with pytest.raises(TaskError, match=r"t\.yaml:\d+: field 'metric_list': metric 'acc_chars' is not supported"):
        load_task(str(write_task(tmp_path, "[acc_chars]")))
