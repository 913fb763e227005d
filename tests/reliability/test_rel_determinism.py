"""Determinism: the same seed gives byte-identical per-sample results whatever the engine
batch size (requests per backend call) and whichever executor runs the requests (local, or
two Ray actors each holding its own copy of the model), on the embedded llamacpp backend.
"""

from __future__ import annotations

import json

import pytest

from llmassay.evaluation import RunConfig, evaluate

pytestmark = [pytest.mark.reliability, pytest.mark.slow]

CATEGORY = "determinism"
LIMIT = 12
BATCH_SIZES = (1, 4, 16)


def samples(smollm2, tmp_path, task: str, batch_size: int, temperature: float = 0.0, seed: int = 0,
            tag: str = "", executor: str = "local") -> bytes:
    out = tmp_path / f"{task}-{temperature}-{seed}-{batch_size}{tag}-{executor}"
    result = evaluate(
        RunConfig(model="llamacpp/smollm2-135m", tasks=[task], limit=LIMIT, use_cache=False, batch_size=batch_size,
                  temperature=temperature, seed=seed, output_path=str(out), executor=executor, workers=2),
        backend=smollm2 if executor == "local" else None,
    )
    data = result.sample_paths[0].read_bytes()
    assert len(data.splitlines()) == LIMIT
    return data


@pytest.mark.parametrize(
    "task,temperature",
    [("mmlu_sample", 0.0), ("arith_sample", 0.0), ("arith_sample", 0.8)],
    ids=["mmlu_sample", "arith_sample", "arith_sample-temperature-0.8"],
)
def test_same_seed_same_results_across_batch_sizes(smollm2, tmp_path, reliability, task, temperature):
    runs = {b: samples(smollm2, tmp_path, task, b, temperature) for b in BATCH_SIZES}
    what = f"{task}{f' at temperature {temperature}' if temperature else ''}, seed 0, {LIMIT} samples"
    for b in BATCH_SIZES[1:]:
        with reliability.case(CATEGORY, f"{what}: batch size {b} == batch size 1, byte for byte", soft=True):
            assert runs[b] == runs[1]
    with reliability.case(CATEGORY, f"{what}: batch size 1 again after 16 (no state carried over)", soft=True):
        assert samples(smollm2, tmp_path, task, 1, temperature, tag="-again") == runs[1]
    reliability.assert_all_passed()
    rows = [json.loads(line) for line in runs[1].splitlines()]
    if task == "mmlu_sample":  # the per-sample results compared hold the raw numbers
        assert all(len(r["loglikelihoods"]) == 4 for r in rows)
    else:
        assert all(isinstance(r["generation"], str) for r in rows)


@pytest.mark.parametrize(
    "task,temperature",
    [("mmlu_sample", 0.0), ("arith_sample", 0.0), ("arith_sample", 0.8)],
    ids=["mmlu_sample", "arith_sample", "arith_sample-temperature-0.8"],
)
def test_same_results_on_local_and_ray_executors(smollm2, local_ray, tmp_path, reliability, task, temperature):
    what = f"{task}{f' at temperature {temperature}' if temperature else ''}, seed 0, {LIMIT} samples"
    local = samples(smollm2, tmp_path, task, 16, temperature)
    for batch_size in (4, 16):
        with reliability.case(CATEGORY, f"{what}: Ray executor (2 workers, batch size {batch_size}) == local, byte for byte",
                              soft=True):
            ray_lines = samples(smollm2, tmp_path, task, batch_size, temperature, executor="ray").splitlines()
            # (a first differing line, not pytest's diff of two large byte strings)
            diff = next((f"line {i}: {x[:300]!r} vs {y[:300]!r}" for i, (x, y) in enumerate(zip(ray_lines, local.splitlines())) if x != y), "")
            assert not diff and len(ray_lines) == LIMIT, diff
    reliability.assert_all_passed()


def test_a_different_seed_changes_what_it_should(smollm2, tmp_path, reliability):
    with reliability.case(CATEGORY, "arith_sample with seed 1 vs seed 0: other few-shot draws, so other prompts"):
        a = [json.loads(line) for line in samples(smollm2, tmp_path, "arith_sample", 16, seed=0).splitlines()]
        b = [json.loads(line) for line in samples(smollm2, tmp_path, "arith_sample", 16, seed=1).splitlines()]
        assert [r["id"] for r in a] == [r["id"] for r in b]
        assert sum(x["prompt"] != y["prompt"] for x, y in zip(a, b)) >= LIMIT - 1
