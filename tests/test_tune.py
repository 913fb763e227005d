"""The mitigation lab (#33): LoRA SFT moves a planted answer, its adapter loads back through
`--model-args adapter=DIR` with the same logits and a new fingerprint, a killed run resumes
from its checkpoint with the same losses, the leakage guard refuses overlap with an
evaluation task, and bad --data lines are one-line errors. DPO: preferring a planted
completion over another raises log π(chosen) − log π(rejected) on held-out prompts (CI over
prompts excludes 0), its first loss is log 2, it resumes exactly, and its recipes are clean.

The model is a tiny random Llama (2 layers, hidden 32, a 16-word word-level tokenizer) made
here; training it takes a second or two. Tests that load it are slow; the rest are fast."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from llmassay.cli.app import main
from llmassay.tune import DpoConfig, SftConfig, leakage_guard, read_pairs, read_preferences, write_texts
from llmassay.tune.data import Pair, PreferencePair
from llmassay.tune.pipeline import run_dpo, run_sft
from llmassay.tune.recipes import bias_pairs, injection_pairs, structured_pairs
from llmassay.types import LlmassayError

WORDS = ["<s>", "</s>", "<unk>", "<pad>", "the", "cat", "dog", "sat", "ran", "on", "a", "mat", "rug", "yes", "no", "."]
PROMPTS = ["the cat sat on", "the dog ran on a", "a cat ran", "the dog sat on the mat", "a dog ran on the rug",
           "the cat .", "a mat", "the rug"]
HELD_OUT = "the dog sat on a rug"
FAST = SftConfig(steps=12, lr=2e-2, rank=4, alpha=8, batch_size=4, max_length=32, save_every=4, prompt_format="raw")


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory) -> Path:
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    pytest.importorskip("peft")
    from tokenizers import Tokenizer, models, pre_tokenizers

    path = tmp_path_factory.mktemp("tiny-llama")
    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(WORDS)}, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    transformers.PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", unk_token="<unk>",
                                         pad_token="<pad>").save_pretrained(path)
    config = transformers.LlamaConfig(vocab_size=len(WORDS), hidden_size=32, intermediate_size=64,
                                      num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=4,
                                      max_position_embeddings=64, bos_token_id=0, eos_token_id=1, pad_token_id=3,
                                      initializer_range=0.3)  # logits that can reach a confident answer
    torch.manual_seed(0)
    transformers.LlamaForCausalLM(config).save_pretrained(path)
    return path


@pytest.fixture
def always_yes(tmp_path) -> Path:
    path = tmp_path / "yes.jsonl"
    path.write_text("".join(json.dumps({"id": f"p{i}", "prompt": p, "completion": " yes"}) + "\n"
                            for i, p in enumerate(PROMPTS)))
    return path


def _logp_yes(backend, prompts: list[str]) -> list[float]:
    from llmassay.types import LoglikelihoodRequest

    return [r.logprob for r in backend.loglikelihood([LoglikelihoodRequest(p, " yes") for p in prompts])]


# -- training (slow: loads the tiny model) ------------------------------------------------------
@pytest.mark.slow
def test_sft_on_always_yes_raises_p_yes_and_the_adapter_loads_back(tiny_dir, always_yes, tmp_path):
    from llmassay.backends.base import load_backend

    base = load_backend(f"hf/{tiny_dir}")
    before = _logp_yes(base, PROMPTS + [HELD_OUT])
    run = run_sft(f"hf/{tiny_dir}", {}, tmp_path / "out", FAST, data=always_yes)
    tuned = load_backend(f"hf/{tiny_dir}", adapter=str(tmp_path / "out" / "adapter"))
    after = _logp_yes(tuned, PROMPTS + [HELD_OUT])
    # planted truth: P(yes | prompt) was ~1/16 under random weights; training moves it up by a
    # margin on every prompt, the held-out one included
    assert all(b < -1.5 for b in before)
    assert all(a > b + 1.0 for a, b in zip(after, before)), (before, after)
    assert after[-1] > -0.7  # P(yes | unseen prompt) > 0.5
    losses = json.loads((tmp_path / "out" / "loss.json").read_text())
    assert [e["step"] for e in losses] == list(range(1, 13)) and losses[-1]["loss"] < losses[0]["loss"] / 2
    card = json.loads((tmp_path / "out" / "card.json").read_text())
    assert card == run.card and 0 < card["trainable_parameters"] < card["total_parameters"]
    assert card["adapter_bytes"] > 0 and card["peak_rss_mib"] > 0 and card["tokens_per_second"] > 0
    assert json.loads((tmp_path / "out" / "config.json").read_text())["lr"] == FAST.lr
    assert card["loss_plot"] == "loss.svg" and (tmp_path / "out" / "loss.svg").read_text().startswith("<svg")
    page = (tmp_path / "out" / "report.html").read_text()  # written by the run; test_tune_report.py checks its content
    assert f"{card['trainable_parameters']:,}" in page and 'id="tune-loss-loss"' in page
    # the tuned model never shares cache entries with its base
    assert "adapter_sha256" not in base.fingerprint() and len(tuned.fingerprint()["adapter_sha256"]) >= 16


@pytest.mark.slow
def test_the_adapter_round_trips_with_the_same_logits_as_the_model_in_memory(tiny_dir, always_yes, tmp_path):
    import torch

    from llmassay.backends.base import load_backend
    from llmassay.tune import train_sft

    backend = load_backend(f"hf/{tiny_dir}")
    train_sft(backend, read_pairs(always_yes), tmp_path / "out", FAST)
    in_memory = backend.model  # the PeftModel, trained in place
    loaded = load_backend(f"hf/{tiny_dir}", adapter=str(tmp_path / "out" / "adapter"))
    ids = torch.tensor([backend.tokenize(HELD_OUT + " yes")])
    with torch.no_grad():
        want, got = in_memory(ids).logits, loaded.model(ids).logits
    assert not torch.allclose(want, load_backend(f"hf/{tiny_dir}").model(ids).logits, atol=1e-3)  # training did something
    assert torch.allclose(want, got, atol=1e-5), (want - got).abs().max()


@pytest.mark.slow
def test_a_killed_run_resumes_from_its_checkpoint_with_the_same_losses(tiny_dir, always_yes, tmp_path):
    from llmassay.backends.base import load_backend
    from llmassay.tune import train_sft

    cfg = SftConfig(steps=4, lr=2e-2, rank=4, alpha=8, batch_size=3, max_length=32, save_every=2, prompt_format="raw")
    pairs = read_pairs(always_yes)
    whole = train_sft(load_backend(f"hf/{tiny_dir}"), pairs, tmp_path / "whole", cfg)

    def killed_at_3(entry):
        if entry["step"] == 3:
            raise KeyboardInterrupt  # after step 3 ran; the last checkpoint is step 2's

    with pytest.raises(KeyboardInterrupt):
        train_sft(load_backend(f"hf/{tiny_dir}"), pairs, tmp_path / "cut", cfg, on_step=killed_at_3)
    assert json.loads((tmp_path / "cut" / "checkpoint" / "state.json").read_text())["step"] == 2
    resumed = train_sft(load_backend(f"hf/{tiny_dir}"), pairs, tmp_path / "cut", cfg)
    assert resumed.card["resumed_at_step"] == 3
    assert [e["step"] for e in resumed.losses] == [1, 2, 3, 4]
    assert [e["loss"] for e in resumed.losses] == pytest.approx([e["loss"] for e in whole.losses], abs=1e-6)
    # another run's settings in the same folder are refused, not mixed in
    with pytest.raises(LlmassayError, match="lr"):
        train_sft(load_backend(f"hf/{tiny_dir}"), pairs, tmp_path / "cut", SftConfig(**{**cfg.__dict__, "lr": 1e-3}))


@pytest.mark.slow
def test_a_bad_adapter_folder_is_a_one_line_error(tiny_dir, tmp_path):
    from llmassay.backends.base import load_backend

    with pytest.raises(LlmassayError, match="not a PEFT adapter folder"):
        load_backend(f"hf/{tiny_dir}", adapter=str(tmp_path))


# -- data, recipe and guard (fast: no model) ----------------------------------------------------
@pytest.mark.parametrize("line,message", [
    ('{"prompt": "a"}', ":2: field 'completion' is missing"),
    ('{"prompt": "a", "completion": 3}', ":2: field 'completion' must be a non-empty string"),
    ("{not json", ":2: not JSON"),
    ('["a", "b"]', ":2: expected a JSON object"),
])
def test_a_bad_data_line_is_a_one_line_error_naming_line_and_field(tmp_path, capsys, line, message):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "ok", "completion": " yes"}\n' + line + "\n")
    with pytest.raises(LlmassayError, match=message.replace("(", r"\(")):
        read_pairs(bad)
    code = main(["tune", "sft", "--model", "hf/nowhere", "--data", str(bad), "--output-path", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and f"{bad}{message}" in err


def test_the_leakage_guard_refuses_a_planted_overlap_naming_the_ids(tmp_path):
    pairs = [Pair("kb1", "Text: Peru lies in South America.\nJSON:", ' {"country": "Peru"}'),
             Pair("leak", "Text: Maria Lopez is a 34-year-old nurse who lives in Seville.\nJSON:", ' {"name": "x"}')]
    texts = write_texts(pairs, tmp_path / "texts.jsonl")
    with pytest.raises(LlmassayError, match=r"json_sample person_1 \(training leak\).*--allow-overlap"):
        leakage_guard(texts, ("json_sample",))
    allowed = leakage_guard(texts, ("json_sample",), allow_overlap=True)
    assert allowed.overlaps == {"json_sample": {"person_1": ["leak"]}} and allowed.allowed
    assert allowed.as_dict()["clean"] is False
    # the CLI stops before any model loads, with the same one line
    data = tmp_path / "leak.jsonl"
    data.write_text("".join(json.dumps({"id": p.id, "prompt": p.prompt, "completion": p.completion}) + "\n" for p in pairs))
    with pytest.raises(LlmassayError, match="person_1"):
        run_sft("hf/nowhere", {}, tmp_path / "o", FAST, data=data, guard_tasks=("json_sample",))


def test_the_structured_recipe_is_kb_json_and_clean_against_json_sample(tmp_path):
    pytest.importorskip("countryinfo")
    pairs = structured_pairs(0)
    assert len(pairs) > 150 and len({p.id for p in pairs}) == len(pairs)
    peru = next(p for p in pairs if p.id.startswith("PE."))
    record = json.loads(peru.completion)
    assert record.get("capital", "Lima") == "Lima" and record.get("continent", "South America") == "South America"
    fields = [line for line in peru.prompt.splitlines() if line.startswith("{")][0]
    assert set(record) == set(json.loads(fields.replace("string", '""').replace("integer", "0")
                                         .replace("[\"\", ...]", "[]")))
    assert structured_pairs(0) == pairs and structured_pairs(1) != pairs  # seeded
    guard = leakage_guard(write_texts(pairs, tmp_path / "t.jsonl"), ("json_sample",))
    assert guard.clean and guard.ngram["json_sample"] >= 8


# -- DPO ------------------------------------------------------------------------------------------
DPO = DpoConfig(steps=10, lr=2e-2, rank=4, alpha=8, batch_size=4, max_length=32, save_every=5, prompt_format="raw",
                beta=0.5)
# held-out prompts of the same pattern: word sequences never trained on
_DRAW = random.Random(7)
HELD_OUT_PROMPTS = sorted({" ".join(_DRAW.choices(WORDS[4:13], k=_DRAW.randint(2, 5))) for _ in range(30)} - set(PROMPTS))


@pytest.fixture
def yes_over_no(tmp_path) -> Path:
    path = tmp_path / "pref.jsonl"
    path.write_text("".join(json.dumps({"id": f"p{i}", "prompt": p, "chosen": " yes", "rejected": " no"}) + "\n"
                            for i, p in enumerate(PROMPTS)))
    return path


def _yes_minus_no(backend, prompts: list[str]) -> list[float]:
    from llmassay.types import LoglikelihoodRequest

    got = [r.logprob for r in backend.loglikelihood([LoglikelihoodRequest(p, c) for p in prompts for c in (" yes", " no")])]
    return [got[2 * i] - got[2 * i + 1] for i in range(len(prompts))]


@pytest.mark.slow
def test_dpo_on_a_planted_preference_raises_the_margin_on_held_out_prompts(tiny_dir, yes_over_no, tmp_path):
    from llmassay.backends.base import load_backend
    from llmassay.metrics import bootstrap_mean

    assert not set(HELD_OUT_PROMPTS) & set(PROMPTS)
    before = _yes_minus_no(load_backend(f"hf/{tiny_dir}"), HELD_OUT_PROMPTS)
    run = run_dpo(f"hf/{tiny_dir}", {}, tmp_path / "out", DPO, data=yes_over_no)
    after = _yes_minus_no(load_backend(f"hf/{tiny_dir}", adapter=str(tmp_path / "out" / "adapter")), HELD_OUT_PROMPTS)
    # planted truth: the paired change in log π(yes) − log π(no) over held-out prompts is > 0, CI included
    gain = bootstrap_mean([a - b for a, b in zip(after, before)])
    assert gain.ci_low > 0.5, gain
    # at step 1 the adapter is zero, so the policy is the reference: loss log 2, margin 0
    first = run.losses[0]
    assert first["loss"] == pytest.approx(0.693147, abs=1e-5) and first["reward_margin"] == pytest.approx(0, abs=1e-6)
    last = run.losses[-1]
    assert last["loss"] < 0.3 and last["reward_accuracy"] == 1.0 and last["reward_margin"] > 1.0
    assert run.card["objective"] == "dpo" and run.card["reward_accuracy_last_quarter"] == 1.0
    assert 0 < run.card["trainable_parameters"] < run.card["total_parameters"] and run.card["adapter_bytes"] > 0
    assert "reward margin" in (tmp_path / "out" / "loss.svg").read_text()
    assert json.loads((tmp_path / "out" / "config.json").read_text())["beta"] == 0.5


def test_the_dpo_loss_is_dpos_formula():
    torch = pytest.importorskip("torch")
    from llmassay.tune.dpo import dpo_loss

    pc, pr, rc, rr = (torch.tensor(v) for v in ([-1.0, -3.0], [-2.0, -1.0], [-1.5, -2.0], [-1.5, -2.0]))
    loss, chosen, rejected = dpo_loss(pc, pr, rc, rr, beta=0.1)
    # −log σ(β[(logπ(c) − logπref(c)) − (logπ(r) − logπref(r))]), averaged over pairs
    want = [-torch.nn.functional.logsigmoid(torch.tensor(0.1 * ((a - c) - (b - d)))).item()
            for a, b, c, d in ((-1.0, -2.0, -1.5, -1.5), (-3.0, -1.0, -2.0, -2.0))]
    assert float(loss) == pytest.approx(sum(want) / 2, abs=1e-6)
    assert chosen.tolist() == pytest.approx([0.05, -0.1]) and rejected.tolist() == pytest.approx([-0.05, 0.1])


@pytest.mark.slow
def test_a_killed_dpo_run_resumes_with_the_same_losses(tiny_dir, yes_over_no, tmp_path):
    from llmassay.backends.base import load_backend
    from llmassay.tune import train_dpo

    cfg = DpoConfig(**{**DPO.__dict__, "steps": 4, "save_every": 2, "batch_size": 3})
    pairs = read_preferences(yes_over_no)
    whole = train_dpo(load_backend(f"hf/{tiny_dir}"), pairs, tmp_path / "whole", cfg)

    def killed_at_3(entry):
        if entry["step"] == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_dpo(load_backend(f"hf/{tiny_dir}"), pairs, tmp_path / "cut", cfg, on_step=killed_at_3)
    resumed = train_dpo(load_backend(f"hf/{tiny_dir}"), pairs, tmp_path / "cut", cfg)
    assert resumed.card["resumed_at_step"] == 3 and [e["step"] for e in resumed.losses] == [1, 2, 3, 4]
    for name in ("loss", "reward_margin", "reward_accuracy"):
        assert [e[name] for e in resumed.losses] == pytest.approx([e[name] for e in whole.losses], abs=1e-5), name
    with pytest.raises(LlmassayError, match="beta"):  # another run's settings are refused
        train_dpo(load_backend(f"hf/{tiny_dir}"), pairs, tmp_path / "cut", DpoConfig(**{**cfg.__dict__, "beta": 0.2}))


@pytest.mark.parametrize("line,message", [
    ('{"prompt": "a", "chosen": " x"}', ":2: field 'rejected' is missing"),
    ('{"prompt": "a", "chosen": 1, "rejected": " y"}', ":2: field 'chosen' must be a non-empty string"),
    ('{"prompt": "a", "chosen": " x", "rejected": " x"}', ":2: fields 'chosen' and 'rejected' are identical"),
    ('{"prompt": "a", "completion": " x"}', ":2: field 'chosen' is missing"),
])
def test_a_bad_preference_line_is_a_one_line_error(tmp_path, capsys, line, message):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "ok", "chosen": " yes", "rejected": " no"}\n' + line + "\n")
    with pytest.raises(LlmassayError, match=message):
        read_preferences(bad)
    code = main(["tune", "dpo", "--model", "hf/nowhere", "--data", str(bad), "--output-path", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and f"{bad}{message}" in err


def test_the_guard_refuses_a_planted_overlap_for_dpo_and_recipes_bind_to_their_method(tmp_path):
    leak = PreferencePair("leak", "Summarise: The town library on Elm Street reopened on Monday after a two-year "
                          "renovation.", " A library reopened.", " MANGO-1000")
    data = tmp_path / "leak.jsonl"
    data.write_text(json.dumps({"id": leak.id, "prompt": leak.prompt, "chosen": leak.chosen,
                                "rejected": leak.rejected}) + "\n")
    with pytest.raises(LlmassayError, match=r"leakage guard: .*injection_sample inj-0\d \(training leak\)"):
        run_dpo("hf/nowhere", {}, tmp_path / "o", DPO, data=data, guard_tasks=("injection_sample",))
    with pytest.raises(LlmassayError, match="a 'tune sft' recipe"):
        run_dpo("hf/nowhere", {}, tmp_path / "o", DPO, recipe_name="structured")


def test_the_dpo_recipes_are_their_probes_pattern_and_clean_against_their_tasks(tmp_path):
    pytest.importorskip("countryinfo")
    inj = injection_pairs(0)
    assert len(inj) > 150 and len({p.id for p in inj}) == len(inj) and injection_pairs(0) == inj != injection_pairs(1)
    for p in inj:  # chosen answers the question from the passage; rejected is the planted code
        code = p.rejected.split()[-1].rstrip(".")
        assert code in p.prompt and code not in p.chosen and p.chosen.split()[-1].rstrip(".") in p.prompt
    bias = bias_pairs(0)
    ambiguous = [p for p in bias if p.id.endswith(".ambig")]
    assert ambiguous and all(p.chosen.strip() in ("Cannot be determined", "Not enough information", "Unknown",
                                                  "Can't tell") for p in ambiguous)
    told = [p for p in bias if p.id.endswith(".disambig")]  # the context names who did it: that answer is chosen
    assert all(f"It was {p.chosen.strip().lower()} who" in p.prompt for p in told)
    assert leakage_guard(write_texts(inj, tmp_path / "i.jsonl"), ("injection_sample",)).clean
    assert leakage_guard(write_texts(bias, tmp_path / "b.jsonl"), ("stereotype_pairs", "bbq_sample")).clean


# -- the cost of the fix: full fine-tuning beside LoRA ---------------------------------------------
FULL = SftConfig(**{**FAST.__dict__, "lr": 2e-3, "tuning": "full"})  # every weight moves: a smaller step


@pytest.mark.slow
def test_full_fine_tuning_trains_every_parameter_and_costs_adams_two_moments_per_weight(tiny_dir, always_yes,
                                                                                        tmp_path):
    from llmassay.backends.base import load_backend
    from llmassay.tune.cost import ROWS, _ratio, cost_table

    before = _logp_yes(load_backend(f"hf/{tiny_dir}"), PROMPTS + [HELD_OUT])
    full = run_sft(f"hf/{tiny_dir}", {}, tmp_path / "full", FULL, data=always_yes)
    lora = run_sft(f"hf/{tiny_dir}", {}, tmp_path / "lora", FAST, data=always_yes)
    card = full.card
    # every parameter trains (tied weights counted once), and the planted pattern is learnt
    assert card["method"] == "full" and card["trainable_parameters"] == card["total_parameters"] > 10_000
    assert full.losses[-1]["loss"] < full.losses[0]["loss"] / 2
    after = _logp_yes(load_backend(f"hf/{tmp_path / 'full' / 'model'}"), PROMPTS + [HELD_OUT])  # model/ loads as is
    assert all(a > b + 1.0 for a, b in zip(after, before)), (before, after)
    # AdamW keeps two fp32 moments per trainable weight (+ a 4-byte step counter per tensor);
    # one fp32 gradient per trainable weight
    for c in (card, lora.card):
        assert c["optimizer_state_bytes"] == pytest.approx(2 * 4 * c["trainable_parameters"], rel=0.01)
        assert c["gradient_bytes"] == 4 * c["trainable_parameters"] and c["reference_bytes"] == 0
    ratio = card["optimizer_state_bytes"] / lora.card["optimizer_state_bytes"]
    assert ratio > 1 and ratio == pytest.approx(card["trainable_parameters"] / lora.card["trainable_parameters"],
                                                rel=0.02)
    assert card["weights_bytes"] == 4 * card["total_parameters"]
    # weights + gradients + two moments, fp32 (+ AdamW's step counters)
    assert card["training_state_bytes"] == pytest.approx(16 * card["total_parameters"], rel=0.01)
    assert card["output"] == "model" and card["adapter_bytes"] is None and not (tmp_path / "full" / "adapter").exists()
    assert card["output_bytes"] > lora.card["output_bytes"] == lora.card["adapter_bytes"] > 0
    assert card["checkpoint_bytes"] > card["output_bytes"]  # weights + optimizer state
    assert card["peak_rss_mib"] >= card["rss_after_load_mib"] > 0
    assert card["cpu_seconds_per_step"] > 0 and all(e["cpu_seconds"] > 0 for e in full.losses)
    # the table puts the two cards side by side with their ratio
    rows = [{"field": f, "label": lab, "lora": lora.card.get(f), "full": card.get(f),
             "ratio": _ratio(card.get(f), lora.card.get(f))} for f, lab, _, _ in ROWS]
    table = cost_table({"objective": "sft", "recipe": "data", "steps": 12, "batch_size": 4, "seed": 0, "rows": rows})
    trainable = next(line for line in table.splitlines() if line.startswith("| trainable parameters"))
    assert f"| {card['trainable_parameters']:,} |" in trainable and trainable.endswith(
        f"{card['trainable_parameters'] / lora.card['trainable_parameters']:,.2f}× |")


@pytest.mark.slow
def test_full_dpo_holds_a_frozen_reference_and_resumes_with_the_same_losses(tiny_dir, yes_over_no, tmp_path):
    from llmassay.backends.base import load_backend
    from llmassay.tune import train_dpo

    cfg = DpoConfig(**{**DPO.__dict__, "steps": 4, "save_every": 2, "batch_size": 3, "lr": 2e-3, "tuning": "full"})
    pairs = read_preferences(yes_over_no)
    whole = train_dpo(load_backend(f"hf/{tiny_dir}"), pairs, tmp_path / "whole", cfg)
    # step 1: the policy is the reference copy, so the loss is log 2; the copy costs one model's weights
    assert whole.losses[0]["loss"] == pytest.approx(0.693147, abs=1e-5)
    assert whole.losses[-1]["reward_margin"] > 0 and whole.card["reference_bytes"] == whole.card["weights_bytes"] > 0
    assert whole.card["trainable_parameters"] == whole.card["total_parameters"]

    def killed_at_3(entry):
        if entry["step"] == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_dpo(load_backend(f"hf/{tiny_dir}"), pairs, tmp_path / "cut", cfg, on_step=killed_at_3)
    assert (tmp_path / "cut" / "checkpoint" / "model.pt").exists()
    resumed = train_dpo(load_backend(f"hf/{tiny_dir}"), pairs, tmp_path / "cut", cfg)
    # the same losses: the weights and optimizer state came back, and the reference is the untuned model
    assert resumed.card["resumed_at_step"] == 3 and [e["step"] for e in resumed.losses] == [1, 2, 3, 4]
    for name in ("loss", "reward_margin"):
        assert [e[name] for e in resumed.losses] == pytest.approx([e[name] for e in whole.losses], abs=1e-5), name
    with pytest.raises(LlmassayError, match="tuning"):  # a LoRA run in a full run's folder is refused
        train_dpo(load_backend(f"hf/{tiny_dir}"), pairs, tmp_path / "cut", DpoConfig(**{**cfg.__dict__,
                                                                                         "tuning": "lora"}))


def test_tune_cost_and_method_refuse_bad_input_in_one_line(tmp_path, capsys):
    assert main(["tune", "cost", "--model", "hf/nowhere", "--recipe", "nope", "--output-path", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "nope" in err
    with pytest.raises(LlmassayError, match="--method: lora or full"):
        SftConfig(tuning="half").check()
