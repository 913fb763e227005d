"""Option rotations on tasks with 3, 5 and mixed option counts: each item gets rotations
1..n−1 exactly once, and the position-bias numbers match a backend whose bias is planted."""

from __future__ import annotations

import json

import pytest
from fakes import RuleBackend as Scripted, always_first, knows_everything, write_mc_task as write_task

from llmassay.evaluation import RunConfig, evaluate
from llmassay.perturbations import PERTURBATIONS, canonical, resolve_perturbations
from llmassay.tasks.loader import load_task

ROTATIONS = [f"options_rot{k}" for k in range(1, 10)]
MIXED = [3, 4, 5, 4, 3, 5, 5, 4, 3, 4, 4, 5]


def rotations_of(task, sample):
    out = {}
    for name in ROTATIONS:
        variant = PERTURBATIONS[name].apply(task, sample, 0)
        if variant is not None:
            out[name] = variant
    return out


@pytest.mark.parametrize("n", [3, 5])
def test_an_item_with_n_options_gets_rotations_1_to_n_minus_1(tmp_path, n):
    task = load_task(str(write_task(tmp_path, [n] * 4)))
    for sample in task.samples:
        variants = rotations_of(task, sample)
        assert list(variants) == ROTATIONS[: n - 1]
        orders = [canonical(task, sample).order] + [v.order for v in variants.values()]
        assert len(set(orders)) == n  # every order once, none twice
        for k, v in enumerate(variants.values(), start=1):
            assert v.order == tuple((s + k) % n for s in range(n))
            right = v.slot_of(sample.target)
            assert f"\n{'ABCDE'[right]}. right " in v.prompt and len(v.choices) == n


def test_repeated_option_texts_and_hidden_options_drop_duplicate_rotations(tmp_path):
    yaml = write_task(tmp_path, [4], name="rep")
    path = tmp_path / "rep.jsonl"
    path.write_text(json.dumps({"question": "q?", "choices": ["x", "y", "x", "y"], "answer": 1}) + "\n")
    task = load_task(str(yaml))
    # rotation 2 shows x y x y again and rotation 3 shows what rotation 1 shows
    assert list(rotations_of(task, task.samples[0])) == ["options_rot1"]
    # a plain question/choices/answer file does not show the options in its prompt
    plain = load_task(str(path))
    assert rotations_of(plain, plain.samples[0]) == {}


def test_option_order_defaults_cover_every_rotation():
    names = [p.name for p in resolve_perturbations(None)]
    assert [n for n in names if n.startswith("options_rot")] == ROTATIONS


def run(tmp_path, backend, perturbations="option order", **options):
    path = write_task(tmp_path, MIXED)
    cfg = RunConfig(model="test/scripted", tasks=[str(path)], probes=["brittleness"],
                    output_path=str(tmp_path / "out"), use_cache=False,
                    probe_options={"perturbations": perturbations, **options})
    out = evaluate(cfg, backend=backend)
    return out.results["results"]["mc"]["brittleness"], out.results["details"]["mc"]["brittleness"], out


def test_mixed_option_counts_first_slot_bias(tmp_path):
    metrics, details, out = run(tmp_path, Scripted(always_first))
    rows = [json.loads(line) for line in out.sample_paths[0].read_text().splitlines()]
    for row, n in zip(rows, MIXED):
        assert sorted(row["variants"]) == sorted(["canonical", *ROTATIONS[: n - 1]])
    assert [metrics[f"position_share[{k}]"]["value"] for k in range(5)] == [1.0, 0.0, 0.0, 0.0, 0.0]
    # Always the first slot: each item is right under exactly one of its n orders.
    expected = sum(1 / n for n in MIXED) / len(MIXED)
    assert metrics["acc_under_permutation"]["value"] == pytest.approx(expected)
    assert metrics["acc_under_permutation"]["n"] == len(MIXED)
    assert metrics["acc[options_rot4]"]["n"] == MIXED.count(5)
    assert metrics["acc[options_rot2]"]["n"] == len(MIXED)
    # The spread is paired: only the variants every item has.
    assert details["spread"]["variants"] == ["canonical", "options_rot1", "options_rot2"]
    assert details["spread"]["left_out"] == ["options_rot3", "options_rot4"]
    assert details["position_bias"]["rotations"] == ["canonical", *ROTATIONS[:4]]
    assert "ensemble_prob_acc" in metrics


def test_mixed_option_counts_no_bias_spreads_picks_over_the_slots_each_item_has(tmp_path):
    metrics, _, _ = run(tmp_path, Scripted(knows_everything))
    # The right answer visits every slot of an item once: slot k is picked by items with > k options.
    total = sum(MIXED)
    for k in range(5):
        share = metrics[f"position_share[{k}]"]
        assert share["value"] == pytest.approx(sum(n > k for n in MIXED) / total)
        assert share["n"] == len(MIXED)  # the item is the unit
        assert share["ci_low"] <= share["value"] <= share["ci_high"]
    assert sum(metrics[f"position_share[{k}]"]["value"] for k in range(5)) == pytest.approx(1.0)
    assert metrics["acc_under_permutation"]["value"] == 1.0
    assert metrics["ensemble_majority_acc"]["value"] == 1.0 and metrics["ensemble_prob_acc"]["value"] == 1.0
