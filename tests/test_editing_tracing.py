"""Causal tracing and fluency with planted truth.

Tracing runs on a tiny random Llama whose attention is switched off (o_proj = 0) in every
layer but K: the last token can learn about the subject only through layer K's attention.
So, exactly: restoring the subject's hidden state below K gives the clean probability and
at or above K changes nothing; restoring the last token's state from K on gives the clean
probability and below K changes nothing; an MLP window entirely at or above K at the subject
has no effect. Fluency: ROME's n-gram entropy of hand-counted strings."""

from __future__ import annotations

import json
import math

import pytest

from llmassay.editing import scores
from llmassay.editing.edits import Edit
from llmassay.types import Generation, LoglikelihoodResult

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

WORDS = ["<s>", "</s>", "<unk>", "the", "capital", "of", "france", "spain", "peru", "is", "in", "paris", "madrid",
         "lima", "a", "city", "costa", "rica"]
LAYERS, K = 6, 3


def _tokenizer():
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers

    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(WORDS)}, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.decoder = decoders.WordPiece(prefix="##")
    return transformers.PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>",
                                                unk_token="<unk>", pad_token="</s>")


@pytest.fixture(scope="module")
def planted():
    """A 6-layer Llama (hidden 32, random weights) whose only attention is layer K's (made 20×
    stronger so the subject moves the answer), and edits whose true object is its top token."""
    config = transformers.LlamaConfig(vocab_size=len(WORDS), hidden_size=32, intermediate_size=64,
                                      num_hidden_layers=LAYERS, num_attention_heads=2, num_key_value_heads=2,
                                      max_position_embeddings=32, initializer_range=0.3, bos_token_id=0,
                                      eos_token_id=1)
    torch.manual_seed(1)
    model = transformers.LlamaForCausalLM(config).eval()
    with torch.no_grad():
        for i, layer in enumerate(model.model.layers):
            layer.self_attn.o_proj.weight.mul_(20.0 if i == K else 0.0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    tok = _tokenizer()
    edits = []
    for subject in ("france", "spain", "peru"):
        with torch.no_grad():
            top = model(torch.tensor([tok(f"the capital of {subject} is")["input_ids"]])).logits[0, -1].argmax()
        edits.append(Edit(subject, "the capital of {} is", tok.convert_ids_to_tokens(int(top)), "lima", id=subject))
    try:
        yield model, tok, edits
    finally:
        torch.set_num_threads(threads)


def _trace(planted, **kw):
    from llmassay.editing.tracing import TraceConfig, trace

    model, tok, edits = planted
    return trace(model, tok, edits, TraceConfig(samples=4, window=kw.pop("window", 1), **kw), "toy")


def test_restoring_a_state_recovers_exactly_where_the_planted_path_runs(planted):
    result = _trace(planted)
    assert [p.id for p in result.prompts] == ["france", "spain", "peru"] and not result.skipped
    for p in result.prompts:
        assert p.subject_range == (3, 4) and p.tokens[3] == p.id
        assert abs(p.p_clean - p.p_corrupt) > 0.01  # the noise matters (else nothing below is tested)
        subject, last = p.restored["state"]  # rows: the subject's position, the last token
        for layer in range(LAYERS):
            assert subject[layer] == pytest.approx(p.p_clean if layer < K else p.p_corrupt, abs=1e-5)
            assert last[layer] == pytest.approx(p.p_clean if layer >= K else p.p_corrupt, abs=1e-5)
        mlp_subject, mlp_last = p.restored["mlp"]  # window 1: one MLP layer
        for layer in range(K, LAYERS):
            assert mlp_subject[layer] == pytest.approx(p.p_corrupt, abs=1e-5)  # read before it ran
        for layer in range(K):
            assert mlp_last[layer] == pytest.approx(p.p_corrupt, abs=1e-5)  # nothing reached it yet
    peak, interval = result.suggested_layer()
    assert peak < K and interval.ci_high < K


def test_the_trace_is_seeded_and_the_noise_is_the_embedding_std_times_the_factor(planted):
    from llmassay.editing.tracing import embedding_std

    model, tok, _ = planted
    a, b = _trace(planted), _trace(planted)
    assert a.prompts[0].restored == b.prompts[0].restored and a.prompts[0].p_corrupt == b.prompts[0].p_corrupt
    other = _trace(planted, seed=7)
    assert other.prompts[0].p_corrupt != a.prompts[0].p_corrupt
    weights = model.get_input_embeddings().weight
    ids = [tok.convert_tokens_to_ids(s) for s in ("france", "peru", "spain")]
    assert a.noise_std == pytest.approx(float(weights.detach()[ids].std()), rel=1e-5)


def test_corrupted_probability_matches_noise_added_by_hand(planted):
    """p_corrupt from the hooks equals the same noise added to inputs_embeds directly."""
    from llmassay.editing.tracing import TraceConfig, trace

    model, tok, edits = planted
    cfg = TraceConfig(samples=3, window=1)
    result = trace(model, tok, edits[:1], cfg)
    gen = torch.Generator().manual_seed(0)
    noise = cfg.noise_factor * result.noise_std * torch.randn(3, 1, 32, generator=gen)
    ids = torch.tensor([tok("the capital of france is")["input_ids"]] * 3)
    with torch.no_grad():
        embeds = model.get_input_embeddings()(ids)
        embeds[:, 3:4] += noise
        probs = torch.softmax(model(inputs_embeds=embeds).logits[:, -1], -1)[:, tok.convert_tokens_to_ids(edits[0].old)]
    assert result.prompts[0].p_corrupt == pytest.approx(float(probs.mean()), abs=1e-6)


def test_token_groups_follow_romes_figure():
    from llmassay.editing.tracing import PromptTrace

    p = PromptTrace("x", "a b S1 S2 S3 c d e", list("abSSScde"), (2, 5), "z", 0.5, 0.1,
                    {"state": [[0.1 + r, 0.2 + r] for r in range(6)], "mlp": [[0.1, 0.1]] * 6})
    assert p.groups() == {"subject first": [0], "subject middle": [1], "subject last": [2],
                          "first after subject": [3], "further tokens": [4], "last token": [5]}
    grouped = p.grouped("state")
    assert grouped["subject last"].tolist() == pytest.approx([2.0, 2.1])  # 0.1 + 2 − p_corrupt
    short = PromptTrace("y", "a S e", list("aSe"), (1, 2), "z", 0.5, 0.1, {"state": [[0.0], [0.0]]})
    assert short.groups()["first after subject"] == [] and short.groups()["last token"] == [1]


def test_trace_json_and_svg_carry_the_table_and_the_suggested_layer(planted):
    from llmassay.editing.plots import trace_figure

    data = json.loads(json.dumps(_trace(planted, window=3).to_json()))
    last = data["mean_indirect_effect"]["mlp"]["subject last"]
    assert len(last) == LAYERS and all(c["n"] == 3 for c in last)
    assert data["suggested_layer"]["layer"] == max(range(LAYERS), key=lambda i: last[i]["value"])
    assert data["mean_indirect_effect"]["state"]["first after subject"][0]["n"] == 0  # "is" is the last token
    svg = trace_figure(data, marked_layer=4)
    assert svg.startswith("<svg") and f"peak: layer {data['suggested_layer']['layer']}" in svg and "layer 4" in svg


def test_the_edit_command_needs_a_layer_unless_it_traces(tmp_path, capsys):
    from llmassay.cli.app import main

    edits = tmp_path / "e.jsonl"
    edits.write_text('{"subject": "France", "prompt": "The capital of France is", "old": "Paris", "new": "Lima"}\n')
    assert main(["edit", "--model", "hf/x", "--edits", str(edits), "--output-path", str(tmp_path / "o")]) == 2
    assert "takes --layer L (or --trace to find one" in capsys.readouterr().err


@pytest.mark.slow
def test_edit_trace_writes_trace_json_and_svg(planted, tmp_path):
    from llmassay.cli.app import main

    model, tok, planted_edits = planted
    model.save_pretrained(tmp_path / "m")
    tok.save_pretrained(tmp_path / "m")
    edits = tmp_path / "e.jsonl"
    edits.write_text("".join(json.dumps({"subject": e.subject, "prompt": e.prompt, "old": e.old, "new": e.new}) + "\n"
                             for e in planted_edits))
    out = tmp_path / "t"
    assert main(["edit", "--trace", "--model", f"hf/{tmp_path / 'm'}", "--edits", str(edits),
                 "--samples", "2", "--window", "1", "--output-path", str(out)]) == 0
    data = json.loads((out / "trace.json").read_text())
    assert data["n_prompts"] == 3 and data["suggested_layer"]["layer"] < K
    assert (out / "trace.svg").read_text().startswith("<svg")


# -- fluency: ROME's n-gram entropy ----------------------------------------------------------
def _h(*counts):
    total = sum(counts)
    return -sum(c / total * math.log2(c / total) for c in counts)


def test_n_gram_entropy_of_known_strings():
    # 7 distinct words: 6 distinct bigrams, 5 distinct trigrams
    assert scores.n_gram_entropy("a b c d e f g") == pytest.approx((2 / 3 * math.log2(6) + 4 / 3 * math.log2(5)) / 2)
    assert scores.n_gram_entropy("the the the the the the") == 0.0  # one bigram, one trigram
    # x y x y x y: bigrams xy ×3, yx ×2; trigrams xyx ×2, yxy ×2
    assert scores.n_gram_entropy("x y x y x y") == pytest.approx((2 / 3 * _h(3, 2) + 4 / 3 * _h(2, 2)) / 2)
    assert scores.n_gram_entropy("one") == 0.0  # no bigram: 0, as ROME's numpy code gives
    assert scores.words("Peru's capital isn't Lima, it's well-known.") == [
        "Peru", "'s", "capital", "is", "n't", "Lima", ",", "it", "'s", "well-known", "."]


def test_fluency_is_the_mean_entropy_of_the_edits_generations_and_change_is_paired():
    edit = Edit("France", "The capital of {} is", "Paris", "Lima", ("{}'s capital is",), id="e")
    asked = []

    def generate(reqs):
        asked.extend(reqs)
        return [Generation("a b c d e f g" if r.prompt.startswith("The") else "x y x y x y", 1, 1, "length")
                for r in reqs]

    rows = scores.score_edits([edit], lambda rs: [LoglikelihoodResult(-1.0, False, 1) for _ in rs], generate, 20)
    assert [(r.prompt, r.max_tokens, r.temperature) for r in asked] == [
        ("The capital of France is", 20, 0.0), ("France's capital is", 20, 0.0)]
    expected = (scores.n_gram_entropy("a b c d e f g") + scores.n_gram_entropy("x y x y x y")) / 2
    assert rows[0]["fluency"] == pytest.approx(expected)
    assert scores.summarise(rows)["fluency"].value == pytest.approx(expected)
    flat = [{**rows[0], "fluency": 0.5}]
    change = scores.fluency_change(rows, flat)
    assert change.value == pytest.approx(0.5 - expected) and change.n == 1
    assert "fluency" not in scores.summarise(scores.score_edits([edit], lambda rs: [
        LoglikelihoodResult(-1.0, False, 1) for _ in rs]))


def test_the_editing_probe_reports_fluency_from_scripted_generations():
    from types import SimpleNamespace

    from llmassay.probes.editing import EditingProbe
    from llmassay.types import Sample

    class Engine:
        def loglikelihood(self, reqs):
            return [LoglikelihoodResult(-1.0, False, 1) for _ in reqs]

        def generate(self, reqs):  # the edit "broke" France: it repeats itself
            return [Generation("Paris Paris Paris Paris" if "France" in r.prompt else "a b c d e f g", 1, 1, "length")
                    for r in reqs]

    docs = [{"subject": s, "prompt": f"The capital of {s} is", "old": o, "new": "Lima"}
            for s, o in (("France", "Paris"), ("Japan", "Tokyo"))]
    samples = [Sample(f"s{i}", d["prompt"], [d["new"], d["old"]], 0, d) for i, d in enumerate(docs)]
    task = SimpleNamespace(name="planted", samples=samples)
    probe = EditingProbe()
    rows = probe.evaluate(task, samples, Engine(), probe.options({}), None)
    assert rows[0]["fluency"] == 0.0 and rows[1]["fluency"] == pytest.approx(scores.n_gram_entropy("a b c d e f g"))
    fluency = probe.analyse(task, rows, None, None).metrics["fluency"]
    assert fluency.n == 2 and fluency.value == pytest.approx(rows[1]["fluency"] / 2)
    assert probe.evaluate(task, samples, Engine(), probe.options({"fluency_tokens": "0"}), None)[0].get("fluency") is None
