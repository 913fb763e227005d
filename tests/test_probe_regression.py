"""Nothing moves unless we mean it: each probe's per-sample rows and metrics, on a backend
whose answers are fixed hashes of the requests, must equal the outputs stored in
tests/data/regression/. A refactor that changes a row fails here; a deliberate change
regenerates the files (`LLMASSAY_REGENERATE=1 pytest tests/test_probe_regression.py`)
in the same commit, with the reason in its message.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import pytest

from fakes import hashed_backend
from llmassay.evaluation import RunConfig, evaluate

STORED = Path(__file__).parent / "data" / "regression"
VOLATILE = {"latency_s", "ttft_s"}  # wall-clock values: not part of a row's meaning

CASES = {
    "accuracy": dict(tasks=["mmlu_sample", "arith_sample"], limit=6),
    "brittleness": dict(tasks=["mmlu_sample"], limit=6, probe_options={"repeats": 2}),
    "factuality": dict(tasks=["country_facts", "country_profiles"], limit=4, probe_options={"rag": "none,bm25"}),
    "structured": dict(tasks=["json_sample"], limit=6),
    "needle": dict(tasks=["needle_sample"], limit=4, probe_options={"lengths": "1024,2048", "depths": "0,0.5,1"}),
    "position": dict(tasks=["position_sample"], limit=4, probe_options={"passages": 3}),
    "watermark": dict(tasks=["prose_continue"], limit=4, probe_options={"max_tokens": 16, "null_keys": 20}),
    "strategies": dict(tasks=["arith_sample"], limit=4, probe_options={"k": 2}),
    "injection": dict(tasks=["injection_sample"], limit=6, probe_options={"mitigations": ("none", "datamark")}),
    "stereotype": dict(tasks=["stereotype_pairs"], limit=7),
    "bbq": dict(tasks=["bbq_sample"], limit=6),
    "counterfactual": dict(tasks=["counterfactual_sample"], limit=4, probe_options={"attributes": ("gender", "age")}),
    "multiturn": dict(tasks=["mmlu_sample"], limit=6),
    "editing": dict(tasks=["country_edits"], limit=6),
    "compositionality": dict(tasks=["country_twohop"], limit=6),
}


def _stable(value: Any) -> Any:
    """Rows and metrics without wall-clock fields, floats rounded past float noise."""
    if isinstance(value, dict):
        return {k: _stable(v) for k, v in value.items() if k not in VOLATILE}
    if isinstance(value, list):
        return [_stable(v) for v in value]
    if isinstance(value, float):
        return round(value, 9) if math.isfinite(value) else str(value)
    return value


def _outputs(tmp_path: Path, probe: str) -> dict[str, Any]:
    case = dict(CASES[probe])
    out = evaluate(
        RunConfig(
            model="test/hashed",
            probes=[probe],
            output_path=str(tmp_path / "out"),
            cache_path=str(tmp_path / "cache.sqlite"),
            **case,
        ),
        backend=hashed_backend(),
    )
    results = out.results
    return json.loads(json.dumps(_stable({
        "metrics": {t: results["results"][t][probe] for t in case["tasks"]},
        "details": {t: results["details"].get(t, {}).get(probe, {}) for t in case["tasks"]},
        "rows": {o.task: o.samples for o in out.probe_results},
    })))  # as a results file holds them (JSON keys are strings)


@pytest.mark.parametrize("probe", sorted(CASES))
def test_rows_and_metrics_equal_the_stored_outputs(tmp_path, probe):
    got = _outputs(tmp_path, probe)
    path = STORED / f"{probe}.json"
    if os.environ.get("LLMASSAY_REGENERATE"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(got, indent=1, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8")
    expected = json.loads(path.read_text(encoding="utf-8"))
    assert got["metrics"] == expected["metrics"]
    for task, details in expected["details"].items():  # details may gain keys, never change one
        assert {k: got["details"][task].get(k) for k in details} == details, task
    for task, rows in expected["rows"].items():
        assert len(got["rows"][task]) == len(rows)
        for mine, stored in zip(got["rows"][task], rows):
            assert mine == stored, f"{probe}/{task}/{stored.get('id')}"
