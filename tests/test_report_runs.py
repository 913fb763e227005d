"""Run directories the report and compare tests read, each made once per session by the
real `evaluate()`: on the embedded models (a handful of samples, so seconds each), and one
on a scripted backend whose every answer is hostile markup.

Not a test module of its own: test_report*.py and test_compare*.py import `run_dir`.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from llmassay.evaluation import RunConfig, evaluate
from llmassay.probes import PROBES
from llmassay.tasks.loader import load_task
from llmassay.types import Generation, LoglikelihoodResult

HOSTILE = '<script>alert(1)</script>"><img src=x onerror=alert(2)>'
LIMIT = 5
GEMMA_LIMIT = 3
STRUCTURED_LIMIT = 2
# canonical, numeric labels and the three option rotations: every brittleness plot has data
PERTURBATIONS = "labels_numeric,options_rot1,options_rot2,options_rot3"

_made: dict[str, Path] = {}


class HostileOutput:
    """Test-only backend whose every generation is a hostile string (the report must show it
    as text and never run it); log-likelihoods are scripted, the first choice the likeliest."""

    name = "test/hostile-output"

    def loglikelihood(self, reqs):
        return [LoglikelihoodResult(-1.0 - len(r.continuation) / 100, True, 1, 1) for r in reqs]

    def generate(self, reqs):
        return [Generation(HOSTILE, 3, 12, "stop") for _ in reqs]

    def tokenize(self, text):
        return list(text.encode())

    def fingerprint(self):
        return {"backend": "test-hostile-output"}


def _evaluate(out: Path, backend, model: str, tasks: list[str], probes: list[str], use_cache: bool = False,
              **kwargs) -> Path:
    cfg = RunConfig(model=model, tasks=tasks, probes=probes, output_path=str(out), use_cache=use_cache, **kwargs)
    evaluate(cfg, backend=backend)
    return out


def _hostile_task(directory: Path) -> str:
    """Five mmlu_sample items whose question text carries the hostile string."""
    rows = []
    for sample in load_task("mmlu_sample").samples[:LIMIT]:
        doc = sample.doc
        rows.append({"id": sample.id, "question": f"{HOSTILE} {doc['question']}", "choices": doc["choices"], "answer": doc["answer"]})
    path = directory / "hostile_items.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return str(path)


def run_dir(kind: str, request: pytest.FixtureRequest) -> Path:
    """The run directory of `kind`, made on first use in this session."""
    if kind in _made:
        return _made[kind]
    root = request.getfixturevalue("tmp_path_factory").mktemp(f"run_{kind}")
    options = {"perturbations": PERTURBATIONS}
    if kind == "smollm2":
        backend = request.getfixturevalue("smollm2")
        # cached (in the session's LLMASSAY_HOME), so that a CLI test asking the same costs no model time
        out = _evaluate(root, backend, "llamacpp/smollm2-135m", ["mmlu_sample"], ["accuracy", "brittleness"],
                        use_cache=True, limit=LIMIT, probe_options=options)
    elif kind == "gemma3":
        from llmassay.backends.llamacpp import LlamaCppBackend

        backend = LlamaCppBackend("gemma3-270m")
        try:  # fewer items than the smollm2 run: compare pairs the common ones
            out = _evaluate(root, backend, "llamacpp/gemma3-270m", ["mmlu_sample"], ["accuracy", "brittleness"],
                            limit=GEMMA_LIMIT, probe_options=options)
        finally:
            backend.llm.close()
    elif kind == "structured":
        if "structured" not in PROBES:
            pytest.skip("the structured probe is not in this tree (llmassay.probes.PROBES)")
        backend = request.getfixturevalue("smollm2")
        out = _evaluate(root, backend, "llamacpp/smollm2-135m", ["json_sample"], ["structured"], limit=STRUCTURED_LIMIT,
                        probe_options={"modes": "strict,extract,repair", "instructions": 0})
    elif kind == "hostile":
        out = _evaluate(root, HostileOutput(), "test/hostile-output", [_hostile_task(root)], ["accuracy"],
                        metrics=["acc", "acc_norm", "acc_gen"])
    else:
        raise ValueError(kind)
    _made[kind] = out
    return out
