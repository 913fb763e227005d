"""The brittleness probe: validation controls on the real model, and exact expectations
on a tiny deterministic backend that always answers "A"."""

from __future__ import annotations

import json

import pytest

from llmassay.evaluate import RunConfig, evaluate
from llmassay.metrics import mcnemar_exact
from llmassay.perturbations import DEFAULT_PERTURBATIONS, PERTURBATIONS, canonical, resolve_perturbations
from llmassay.tasks.loader import load_task
from llmassay.types import Generation, LlmassayError, LoglikelihoodResult


class AlwaysA:
    """Test-only backend: the first option label is always the most likely answer."""

    name = "test/always-a"

    def loglikelihood(self, reqs):
        return [
            LoglikelihoodResult(0.0 if r.continuation.strip() in ("A", "1") else -5.0, True, 1, 1) for r in reqs
        ]

    def generate(self, reqs):
        return [Generation("A", 1, 1, "stop") for _ in reqs]

    def tokenize(self, text):
        return list(text.encode())

    def fingerprint(self):
        return {"backend": "test-always-a"}


def run(tmp_path, backend=None, **kwargs):
    cfg = RunConfig(
        model="llamacpp/smollm2-135m",
        tasks=["mmlu_sample"],
        probes=["brittleness"],
        output_path=str(tmp_path / "out"),
        cache_path=str(tmp_path / "cache.sqlite"),
        **kwargs,
    )
    return evaluate(cfg, backend=backend)


def metric(outcome, name):
    return outcome.results["results"]["mmlu_sample"]["brittleness"][name]


def test_always_a_backend_has_full_position_bias_and_chance_accuracy_under_permutation(tmp_path):
    out = run(tmp_path, backend=AlwaysA(), limit=20, probe_options={"perturbations": "option order"})
    for k, expected in enumerate([1.0, 0.0, 0.0, 0.0]):
        assert metric(out, f"position_share[{k}]")["value"] == expected
    # Each 4-option item is right under exactly one of its 4 rotations.
    assert metric(out, "acc_under_permutation")["value"] == 0.25
    assert metric(out, "acc[canonical]")["value"] == pytest.approx(
        sum(s.target == 0 for s in load_task("mmlu_sample").samples[:20]) / 20
    )
    details = out.results["details"]["mmlu_sample"]["brittleness"]
    assert details["position_bias"]["max_slot_share"] == 1.0


def test_numeric_labels_map_back_to_options(tmp_path):
    out = run(tmp_path, backend=AlwaysA(), limit=10, probe_options={"perturbations": "labels_numeric,labels_paren"})
    # "1" is the first option as "A" is: nothing flips.
    assert metric(out, "flip_rate[labels_numeric]")["value"] == 0.0
    assert metric(out, "flip_rate[labels_paren]")["value"] == 0.0


@pytest.mark.slow
def test_identity_never_flips_on_the_real_model(tmp_path):
    out = run(tmp_path, limit=8, probe_options={"perturbations": "identity,case_upper"})
    assert metric(out, "flip_rate[identity]")["value"] == 0.0
    assert metric(out, "acc[identity]") == metric(out, "acc[canonical]")
    # the identity variant's requests are the canonical ones: deduplicated, not recomputed
    engine = out.results["engine"]
    assert engine["unique"] < engine["requests"]
    rows = [json.loads(line) for line in out.sample_paths[0].read_text().splitlines()]
    assert {"canonical", "identity", "case_upper"} == set(rows[0]["variants"])
    assert rows[0]["variants"]["case_upper"]["prompt"] != rows[0]["variants"]["canonical"]["prompt"]
    details = out.results["details"]["mmlu_sample"]["brittleness"]
    assert details["batch_invariance"]["max_abs_delta"] == 0.0


@pytest.mark.slow
def test_scrambled_questions_fall_to_chance(tmp_path):
    out = run(tmp_path, limit=24, probe_options={"perturbations": "scramble"})
    acc = metric(out, "acc[scramble]")
    assert acc["ci_low"] <= 0.25 <= acc["ci_high"]


@pytest.mark.slow
def test_spread_flip_and_indices_are_consistent(tmp_path):
    out = run(tmp_path, limit=12, probe_options={"perturbations": "case_upper,labels_numeric,options_rot1"})
    accs = [metric(out, f"acc[{n}]")["value"] for n in ("canonical", "case_upper", "labels_numeric", "options_rot1")]
    spread = metric(out, "spread")
    assert spread["value"] == pytest.approx(max(accs) - min(accs))
    assert spread["ci_low"] <= spread["value"] <= spread["ci_high"]
    for name in ("sensitivity_mean", "pss", "posix", "ensemble_majority_acc", "ensemble_prob_acc"):
        m = metric(out, name)
        assert m["ci_low"] <= m["value"] <= m["ci_high"] and m["n"] == 12
    assert 0.0 <= metric(out, "pss")["value"] <= 1.0


def test_unknown_perturbation_is_a_clear_error():
    with pytest.raises(LlmassayError, match="unknown perturbation or family 'nope'"):
        resolve_perturbations("nope")
    assert [p.name for p in resolve_perturbations(None)] == list(DEFAULT_PERTURBATIONS)
    assert {p.name for p in resolve_perturbations("option order")} >= {"options_rot1", "options_rot3"}


def test_generation_tasks_are_refused(tmp_path):
    with pytest.raises(LlmassayError, match="brittleness: task 'arith_sample' is generate_until"):
        evaluate(RunConfig(model="x/y", tasks=["arith_sample"], probes=["brittleness"], limit=2,
                           output_path=str(tmp_path / "o"), use_cache=False), backend=AlwaysA())


# -- the perturbations themselves -----------------------------------------------------------
@pytest.fixture(scope="module")
def mmlu():
    return load_task("mmlu_sample")


def test_every_perturbation_is_seeded_and_reproducible(mmlu):
    sample = mmlu.samples[3]
    for p in PERTURBATIONS.values():
        a, b = p.apply(mmlu, sample, 7), p.apply(mmlu, sample, 7)
        assert a == b, p.name
        assert sorted(a.order) == list(range(4)) and len(a.choices) == 4


def test_rotation_keeps_the_right_answer_reachable(mmlu):
    for sample in mmlu.samples[:20]:
        right = sample.doc["choices"][sample.target]
        for k in (1, 2, 3):
            v = PERTURBATIONS[f"options_rot{k}"].apply(mmlu, sample, 0)
            slot = v.slot_of(sample.target)
            assert f"\n{'ABCD'[slot]}. {right}\n" in v.prompt
            assert v.order == tuple((s + k) % 4 for s in range(4))


def test_format_perturbations_change_only_the_format(mmlu):
    sample = next(s for s in mmlu.samples if s.id == "anatomy_0")
    base = canonical(mmlu, sample)
    numeric = PERTURBATIONS["labels_numeric"].apply(mmlu, sample, 0)
    assert numeric.choices == ("1", "2", "3", "4") and "\n2. Cranial\n" in numeric.prompt
    assert PERTURBATIONS["fields_short"].apply(mmlu, sample, 0).prompt.endswith("\nA:")
    assert "A. Abdominal B. Cranial C. Pleural D. Spinal" in PERTURBATIONS["sep_space"].apply(mmlu, sample, 0).prompt
    instruction = PERTURBATIONS["instruction_1"].apply(mmlu, sample, 0).prompt
    assert instruction.startswith("Answer the following multiple choice questions about anatomy.\n\nWhich")
    assert instruction.endswith(base.prompt.split("\n\n", 1)[1])
    upper = PERTURBATIONS["case_upper"].apply(mmlu, sample, 0).prompt
    assert "WHICH OF THE FOLLOWING IS THE BODY CAVITY" in upper and "A. Abdominal" in upper


def test_typos_change_about_the_requested_share_of_letters(mmlu):
    changed = 0
    letters = 0
    for sample in mmlu.samples[:60]:
        q = sample.doc["question"]
        v = PERTURBATIONS["typos_10"].apply(mmlu, sample, 0)
        noisy = v.prompt.split("\n\n", 1)[1].split("\nA. ")[0]
        letters += sum(c.isalpha() for c in q)
        changed += noisy != q.strip()
    assert changed >= 55  # nearly every question of this length gets at least one typo


def test_fewshot_perturbations(mmlu):
    arith = load_task("arith_sample")
    s = arith.samples[0]
    reseed = PERTURBATIONS["fewshot_reseed"].apply(arith, s, 0).prompt
    order = PERTURBATIONS["fewshot_order"].apply(arith, s, 0).prompt
    assert reseed != s.prompt and reseed.endswith(s.prompt.rsplit("\n\n", 1)[1])
    assert sorted(order.split("\n\n")) == sorted(s.prompt.split("\n\n")) and order != s.prompt
    zero_shot = mmlu.samples[0]
    assert PERTURBATIONS["fewshot_order"].apply(mmlu, zero_shot, 0).prompt == zero_shot.prompt


def test_mcnemar_exact_values():
    assert mcnemar_exact(0, 0) == 1.0
    assert mcnemar_exact(0, 5) == pytest.approx(0.0625)
    assert mcnemar_exact(3, 3) == 1.0
    assert mcnemar_exact(1, 9) == pytest.approx(2 * (1 + 10) / 1024)


def test_generation_scoring_mode_is_used_and_reported(tmp_path):
    out = run(tmp_path, backend=AlwaysA(), limit=8,
              probe_options={"perturbations": "options_rot1", "scoring": "acc_gen"})
    details = out.results["details"]["mmlu_sample"]["brittleness"]
    assert details["scoring"] == "acc_gen"
    assert metric(out, "position_share[0]")["value"] == 1.0
    rows = [json.loads(line) for line in out.sample_paths[0].read_text().splitlines()]
    assert rows[0]["variants"]["canonical"]["generation"] == "A"
    with pytest.raises(LlmassayError, match=r"^-P brittleness\.scoring: bleu; choose from acc, acc_norm, acc_bytes, acc_gen$"):
        run(tmp_path / "x", backend=AlwaysA(), limit=2, probe_options={"scoring": "bleu"})


@pytest.mark.slow
def test_greedy_repeats_agree_on_the_real_model(tmp_path):
    out = run(tmp_path, limit=6, probe_options={"perturbations": "identity", "repeats": 3})
    agreement = metric(out, "repeat_agreement")
    assert agreement["n"] == 6 and agreement["value"] == 1.0
    rows = [json.loads(line) for line in out.sample_paths[0].read_text().splitlines()]
    assert all(len(r["repeat_preds"]) == 3 for r in rows)
