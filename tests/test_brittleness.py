"""The brittleness probe: validation controls on the real model, and exact expectations
on a tiny deterministic backend that always answers "A"."""

from __future__ import annotations

import json

import pytest
from fakes import RuleBackend as Scripted, always_first, knows_everything, write_mc_task as write_task

from llmassay.evaluation import RunConfig, evaluate
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
        if p.name in {f"options_rot{k}" for k in range(4, 10)}:
            assert a is None  # a 4-option item has rotations 1..3 only
        else:
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
    rows = [json.loads(line) for line in out.sample_paths[0].read_text().splitlines()]
    assert all(len(r["repeat_preds"]) == 3 and len(set(r["repeat_preds"])) == 1 for r in rows)  # greedy
    # Identical answers agree only when they name an option (smollm2 mostly names none here).
    parsed = sum(r["repeat_preds"][0] is not None for r in rows) / 6
    assert agreement["n"] == 6 and agreement["value"] == parsed == metric(out, "repeat_parse_rate")["value"]


# -- planted truths on a scripted backend ---------------------------------------------------
def run_scripted(tmp_path, backend, perturbations, n_items=40, **options):
    path = write_task(tmp_path, [4] * n_items)
    cfg = RunConfig(model="test/scripted", tasks=[str(path)], probes=["brittleness"],
                    output_path=str(tmp_path / "out"), use_cache=False,
                    probe_options={"perturbations": perturbations, **options})
    out = evaluate(cfg, backend=backend)
    rows = [json.loads(line) for line in out.sample_paths[0].read_text().splitlines()]
    return out.results["results"]["mc"]["brittleness"], out.results["details"]["mc"]["brittleness"], rows


FORMATS = "case_upper,punct_strip,labels_paren,sep_dash,fields_short"


def wrong_under_paren_labels(prompt):
    """Knows every answer, except when the options are labelled (A): then it picks a wrong one."""
    if "\n(A) " in prompt:
        right = knows_everything(prompt)
        return next(label for label in "ABCD" if label != right)
    return knows_everything(prompt)


def test_identical_variants_have_zero_spread_and_a_ci_at_zero(tmp_path):
    metrics, details, _ = run_scripted(tmp_path, Scripted(knows_everything), FORMATS)
    spread = metrics["spread"]
    assert (spread["value"], spread["ci_low"]) == (0.0, 0.0)
    assert details["spread"]["p_value"] == 1.0 and metrics["spread_null"]["value"] == 0.0


def test_one_planted_bad_variant_is_detected(tmp_path):
    metrics, details, _ = run_scripted(tmp_path, Scripted(wrong_under_paren_labels), FORMATS)
    assert metrics["acc[labels_paren]"]["value"] == 0.0 and metrics["acc[case_upper]"]["value"] == 1.0
    assert metrics["spread"]["value"] == 1.0 and metrics["spread"]["ci_low"] > 0.5
    assert details["spread"]["between"][1] == "labels_paren"
    assert details["spread"]["p_value"] < 0.05
    assert metrics["flip_rate[labels_paren]"]["value"] == 1.0


def test_controls_are_reported_but_stay_out_of_the_aggregates(tmp_path):
    # scramble leaves no `right …` option: the rule answers nothing, the likeliest is then none
    # of the labels (all −5) and the first option wins the argmax.
    metrics, details, _ = run_scripted(tmp_path, Scripted(knows_everything), "control,case_upper")
    assert details["controls"] == ["identity", "reask", "scramble"]
    assert metrics["acc[scramble]"]["value"] == pytest.approx(0.25)  # targets cycle over A–D
    assert metrics["acc[identity]"]["value"] == metrics["acc[reask]"]["value"] == 1.0
    # Without the controls canonical and case_upper agree everywhere: no spread, no sensitivity.
    assert metrics["spread"]["value"] == 0.0 and details["spread"]["variants"] == ["canonical", "case_upper"]
    assert metrics["sensitivity_mean"]["value"] == 0.0 and metrics["pss"]["value"] == 0.0
    assert metrics["ensemble_prob_acc"]["value"] == 1.0
    assert details["n_variants"] == 2
    assert {v["variant"]: v["control"] for v in details["variants"]}["scramble"] is True


class Jittery(Scripted):
    """Nondeterministic: every second batch it computes answers the last option."""

    def __init__(self):
        super().__init__(knows_everything)
        self.calls = 0

    def loglikelihood(self, reqs):
        out = super().loglikelihood(reqs)
        self.calls += 1
        if self.calls % 2 == 0:  # a second pass over the same prompts: a different answer
            out = [r.__class__(0.0 if q.continuation.strip() == "D" else -5.0, True, 1, 1) for q, r in zip(reqs, out)]
        return out


def test_reask_computes_the_prompt_again_and_identity_does_not(tmp_path):
    calls = {}
    for name in ("identity", "reask"):
        backend = Scripted(knows_everything)
        run_scripted(tmp_path / name, backend, name, n_items=8)
        calls[name] = backend.loglikelihood_calls
        assert len(set(calls[name])) == 8 * 4  # the canonical requests, nothing else
    # identity is deduplicated against the canonical requests; reask computes all 32 again
    # (both runs add the same batch-invariance check afterwards).
    assert len(calls["reask"]) - len(calls["identity"]) == 8 * 4
    # A backend that answers differently when asked again: only reask sees it.
    metrics, _, _ = run_scripted(tmp_path / "c", Jittery(), "identity,reask", n_items=8)
    assert metrics["flip_rate[identity]"]["value"] == 0.0
    assert metrics["flip_rate[reask]"]["value"] == pytest.approx(6 / 8)  # targets on D agree anyway


def answers_even_items(prompt):
    """Generates the right letter for even-numbered items and nothing for odd ones."""
    item = int(prompt.lower().split("item ")[1].split("?")[0])
    return knows_everything(prompt) if item % 2 == 0 else None


def test_acc_gen_unparsed_answers_are_their_own_outcome(tmp_path):
    backend = Scripted(always_first, generate_rule=answers_even_items)
    metrics, details, rows = run_scripted(
        tmp_path, backend, "case_upper,options_rot1,options_rot2,options_rot3", scoring="acc_gen", repeats=3
    )
    assert rows[1]["variants"]["canonical"]["pred"] is None
    for name in ("canonical", "case_upper", "options_rot1"):
        assert metrics[f"parse_rate[{name}]"]["value"] == 0.5
        assert metrics[f"acc[{name}]"]["value"] == 0.5
    # The odd items answered nothing twice: that is not agreement.
    assert metrics["flip_rate[case_upper]"]["value"] == 0.5
    assert metrics["repeat_agreement"]["value"] == 0.5 and metrics["repeat_parse_rate"]["value"] == 0.5
    assert metrics["sensitivity_mean"]["value"] == 0.5  # odd items: every variant disagrees
    # Shares over parsed answers sum to 1 (the right answer visits each slot once), unparsed beside.
    shares = [metrics[f"position_share[{k}]"]["value"] for k in range(4)]
    assert shares == [0.25] * 4 and metrics["position_unparsed"]["value"] == 0.5
    # Ensembles vote with the generated answers; log-likelihoods (always "A") play no part.
    assert metrics["ensemble_majority_acc"]["value"] == 0.5
    assert "ensemble_prob_acc" not in metrics and details["ensembling"]["method"] == "majority vote"


def test_batch_invariance_clears_the_backend_state_and_counts_its_requests(tmp_path):
    """The check recomputes (no request cache) from a cleared KV cache, through the run's engine."""

    class Stateful(AlwaysA):
        def __init__(self):
            self.resets, self.calls = 0, 0

        def reset(self):
            self.resets += 1

        def loglikelihood(self, reqs):
            self.calls += 1
            return super().loglikelihood(reqs)

    backend = Stateful()
    out = run(tmp_path, backend=backend, limit=3, probe_options={"perturbations": "case_upper"})
    check = out.results["details"]["mmlu_sample"]["brittleness"]["batch_invariance"]
    assert backend.resets == 2 and check["requests"] == 12 and check["max_abs_delta"] == 0.0
    # 3 items × 2 prompts × 4 choices for the rows, then 12 + 12 for the check, all counted
    assert out.results["engine"]["requests"] == 24 + 24
