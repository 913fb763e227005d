"""ROME on a tiny Llama trained in the test to know a few capitals (planted truth): an edit
makes the new capital beat the old on its prompt, leaves another country's next-token
distribution within a stated KL, and its delta folder reproduces the edited logits.

The toy's prompts end at the subject ("the capital of france" → "paris"): a 2-layer model
looks a fact up at the last position, so only there does an edit of the subject token's MLP
reach the answer (real prompts, with words after the subject, are the SmolLM2 test's)."""

from __future__ import annotations

import json

import pytest

from llmassay.editing.edits import Edit, Neighbour, read_edits
from llmassay.editing import scores
from llmassay.types import LlmassayError, LoglikelihoodRequest, LoglikelihoodResult

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

FACTS = {"france": "paris", "spain": "madrid", "italy": "rome", "peru": "lima", "chile": "santiago"}
WORDS = ["<s>", "</s>", "<unk>", ".", "the", "capital", "of", "is", "a", "country", "city", "in",
         "europe", "america", *FACTS, *FACTS.values()]
LAYERS = 2
KL_TOLERANCE = 0.05  # nats: another country's next-token distribution after one edit


def _tokenizer():
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers

    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(WORDS)}, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.decoder = decoders.WordPiece(prefix="##")  # joins words with spaces
    return transformers.PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>",
                                                unk_token="<unk>", pad_token="</s>")


def _train(tok):
    """A 2-layer Llama (hidden 32) fitted to "the capital of X Y ." for five countries."""
    config = transformers.LlamaConfig(vocab_size=len(WORDS), hidden_size=32, intermediate_size=64,
                                      num_hidden_layers=LAYERS, num_attention_heads=2, num_key_value_heads=2,
                                      max_position_embeddings=64, bos_token_id=0, eos_token_id=1)
    torch.manual_seed(0)
    model = transformers.LlamaForCausalLM(config)
    texts = [f"the capital of {c} {p} ." for c, p in FACTS.items()]
    texts += [f"{c} is a country in {'europe' if c in ('france', 'spain', 'italy') else 'america'} ."
              for c in FACTS]
    texts += [f"{p} is a city ." for p in FACTS.values()]
    ids = torch.tensor([tok(t)["input_ids"] + [1] * (8 - len(tok(t)["input_ids"])) for t in texts])
    opt = torch.optim.Adam(model.parameters(), lr=3e-2)
    for _ in range(60):
        opt.zero_grad()
        model(input_ids=ids, labels=ids).loss.backward()
        opt.step()
    return model.eval()


@pytest.fixture(scope="module")
def trained():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a tiny model: threads only contend
    try:
        tok = _tokenizer()
        yield _train(tok), tok
    finally:
        torch.set_num_threads(threads)


def _next_logp(model, tok, text):
    with torch.no_grad():
        return torch.log_softmax(model(torch.tensor([tok(text)["input_ids"]])).logits[0, -1], -1)


def _edit_one(model, tok):
    from llmassay.editing.rome import RomeConfig, apply_edit, key_covariance

    cfg = RomeConfig(layer=1, steps=30, n_prefixes=0)  # a 2-layer toy writes no useful prefixes
    sentences = [f"the capital of {c} {p} ." for c, p in FACTS.items()] * 4 + ["a city in europe ."] * 4
    cov = key_covariance(model, tok, cfg.layer, sentences)
    edit = Edit("france", "the capital of {}", "paris", "lima", id="1")
    return edit, apply_edit(model, tok, edit, cov, cfg)


def test_an_edit_makes_the_new_object_beat_the_old_and_spares_an_unrelated_fact(trained):
    import copy

    base, tok = trained
    model = copy.deepcopy(base)
    france = _next_logp(model, tok, "the capital of france")
    spain = _next_logp(model, tok, "the capital of spain")
    paris, lima, madrid = (tok.convert_tokens_to_ids(w) for w in ("paris", "lima", "madrid"))
    assert france[paris] > france[lima] and spain.argmax() == madrid  # the planted facts, before
    edit, outcome = _edit_one(model, tok)
    after = _next_logp(model, tok, "the capital of france")
    assert after[lima] > after[paris]
    assert outcome.nll_after < outcome.nll_before
    spain_after = _next_logp(model, tok, "the capital of spain")
    kl = float(torch.sum(spain.exp() * (spain - spain_after)))
    assert kl < KL_TOLERANCE and spain_after.argmax() == madrid


def test_the_delta_folder_reproduces_the_edited_logits(trained, tmp_path):
    import copy

    from llmassay.editing.delta import apply_delta, save_delta
    from llmassay.editing.rome import param_name

    base, tok = trained
    model = copy.deepcopy(base)
    _edit_one(model, tok)
    name = param_name(model, 1)
    sha = save_delta(tmp_path / "d", {name: model.get_parameter(name) - base.get_parameter(name)}, {"layer": 1})
    fresh = copy.deepcopy(base)
    assert apply_delta(fresh, tmp_path / "d") == sha
    text = "the capital of france"
    assert torch.allclose(_next_logp(fresh, tok, text), _next_logp(model, tok, text), atol=1e-5)
    manifest = json.loads((tmp_path / "d" / "edits.json").read_text())
    (tmp_path / "d" / "edits.json").write_text(json.dumps({**manifest, "base_weights_sha256": {"m.gguf": "abc"}}))
    with pytest.raises(LlmassayError, match="made on other weights"):
        apply_delta(copy.deepcopy(base), tmp_path / "d", base_weights={"m.gguf": "def"})


def test_scores_read_efficacy_paraphrase_and_neighbourhood_from_loglikelihoods():
    edit = Edit("France", "The capital of {} is", "Paris", "Lima", ("{} has its capital in",),
                (Neighbour("The capital of Spain is", "Madrid"), Neighbour("France is in", "Europe")), "e1")
    planted = {("The capital of France is", " Lima"): -1.0, ("The capital of France is", " Paris"): -2.0,
               ("France has its capital in", " Lima"): -3.0, ("France has its capital in", " Paris"): -2.0,
               ("The capital of Spain is", " Madrid"): -1.0, ("The capital of Spain is", " Lima"): -4.0,
               ("France is in", " Europe"): -5.0, ("France is in", " Lima"): -1.0}
    reqs = scores.requests(edit)
    assert {(r.context, r.continuation) for r in reqs} == set(planted)
    rows = scores.score_edits([edit], lambda rs: [LoglikelihoodResult(planted[(r.context, r.continuation)],
                                                                      False, 1) for r in rs])
    assert rows[0]["efficacy"] == 1 and rows[0]["paraphrase"] == 0.0 and rows[0]["neighbourhood"] == 0.5
    summary = scores.summarise(rows)
    assert summary["efficacy"].value == 1.0 and summary["efficacy"].n == 1
    assert isinstance(reqs[0], LoglikelihoodRequest)


def test_mean_logprob_per_token_decides_between_objects_of_different_lengths():
    edit = Edit("X", "The capital of {} is", "Old", "New City", id="e")
    rows = scores.score_edits([edit], lambda rs: [
        LoglikelihoodResult(-3.0, False, 2) if r.continuation == " New City" else LoglikelihoodResult(-2.0, False, 1)
        for r in rs])
    assert rows[0]["efficacy"] == 1  # −1.5 per token beats −2.0


@pytest.mark.parametrize("line, message", [
    ('{"subject": "France", "prompt": "The capital of Spain is", "old": "Paris", "new": "Lima"}',
     "edits.jsonl:1: field 'prompt' must contain the subject"),
    ('{"subject": "France", "prompt": "The capital of {} is", "old": "Paris"}', "edits.jsonl:1: field 'new'"),
    ('{"subject": "France", "prompt": "The capital of {} is", "old": "Paris", "new": " Paris"}',
     "edits.jsonl:1: fields 'old' and 'new' are the same"),
    ('{"subject": "France", "prompt": "{} is", "old": "a", "new": "b", "neighbourhood": ["x"]}',
     "edits.jsonl:1: field 'neighbourhood'"),
    ("not json", "edits.jsonl:1: not JSON"),
])
def test_bad_edit_lines_are_one_line_errors_naming_line_and_field(tmp_path, line, message):
    path = tmp_path / "edits.jsonl"
    path.write_text(line + "\n")
    with pytest.raises(LlmassayError, match=message):
        read_edits(path)


# -- the probe, through a scripted engine ---------------------------------------------------
class _PlantedEngine:
    """Log-likelihoods from a table: the edit "took" for France, not for Japan."""

    table = {"Lima": {"The capital of France is": -1.0, "France's capital is": -1.0, "The capital of Spain is": -6.0},
             "Paris": {"The capital of France is": -3.0, "France's capital is": -0.5},
             "Madrid": {"The capital of Spain is": -2.0},
             "Cairo": {"The capital of Japan is": -4.0}, "Tokyo": {"The capital of Japan is": -1.0}}

    def loglikelihood(self, reqs):
        return [LoglikelihoodResult(self.table[r.continuation.strip()].get(r.context, -9.0), False, 1) for r in reqs]


def test_the_editing_probe_reports_planted_efficacy_paraphrase_and_neighbourhood():
    from types import SimpleNamespace

    from llmassay.probes.editing import EditingProbe
    from llmassay.types import Sample

    docs = [{"subject": "France", "prompt": "The capital of France is", "old": "Paris", "new": "Lima",
             "paraphrases": ["France's capital is"],
             "neighbourhood": [{"prompt": "The capital of Spain is", "true": "Madrid"}]},
            {"subject": "Japan", "prompt": "The capital of Japan is", "old": "Tokyo", "new": "Cairo"}]
    samples = [Sample(f"s{i}", d["prompt"], [d["new"], d["old"]], 0, d) for i, d in enumerate(docs)]
    task = SimpleNamespace(name="planted", samples=samples)
    probe = EditingProbe()
    assert probe.supports(task) is None
    rows = probe.evaluate(task, samples, _PlantedEngine(), probe.options({"fluency_tokens": "0"}), None)  # no generations
    assert [r["efficacy"] for r in rows] == [1, 0] and rows[0]["paraphrase"] == 0.0
    assert rows[0]["neighbourhood"] == 1.0 and rows[1]["paraphrase"] is None
    metrics = probe.analyse(task, rows, None, None).metrics
    assert metrics["efficacy"].value == 0.5 and metrics["efficacy"].n == 2 and metrics["paraphrase"].n == 1


def test_the_edit_command_names_the_bad_line_before_loading_a_model(tmp_path, capsys):
    from llmassay.cli.app import main

    bad = tmp_path / "edits.jsonl"
    bad.write_text('{"subject": "France", "prompt": "The capital of France is", "old": "Paris", "new": "Lima"}\n'
                   '{"subject": "Peru", "prompt": "The capital of Peru is", "old": "Lima"}\n')
    args = ["edit", "--model", "hf/no-such-dir", "--edits", str(bad), "--layer", "1", "--output-path", str(tmp_path / "o")]
    assert main(args) == 2
    assert f"{bad}:2: field 'new' must be non-empty text" in capsys.readouterr().err
    assert main([*args[:2], "llamacpp/smollm2-135m", *args[3:]]) == 2
    assert "must be an hf/ model" in capsys.readouterr().err


# -- through the hf backend (loads a model from a folder: slow tier) ------------------------
@pytest.mark.slow
def test_edits_dir_on_the_hf_backend_gives_the_edited_logits_and_its_own_fingerprint(trained, tmp_path):
    import copy

    from llmassay.backends.base import load_backend
    from llmassay.editing.delta import save_delta
    from llmassay.editing.rome import param_name

    base, tok = trained
    tok.save_pretrained(tmp_path / "m")
    base.save_pretrained(tmp_path / "m")
    plain = load_backend(f"hf/{tmp_path / 'm'}")
    model = copy.deepcopy(base)
    _edit_one(model, tok)
    name = param_name(model, 1)
    save_delta(tmp_path / "d", {name: model.get_parameter(name) - base.get_parameter(name)},
               {"layer": 1, "base_weights_sha256": plain.weights_sha256()})
    edited = load_backend(f"hf/{tmp_path / 'm'}", edits=str(tmp_path / "d"))
    req = [LoglikelihoodRequest("the capital of france", " lima"), LoglikelihoodRequest("the capital of france", " paris")]
    lima, paris = (r.logprob for r in edited.loglikelihood(req))
    expected = _next_logp(model, tok, "the capital of france")
    assert lima > paris and lima == pytest.approx(float(expected[tok.convert_tokens_to_ids("lima")]), abs=1e-4)
    assert plain.loglikelihood(req)[0].logprob < plain.loglikelihood(req)[1].logprob
    assert "edits_sha256" in edited.fingerprint() and "edits_sha256" not in plain.fingerprint()
    assert edited.fingerprint()["weights_sha256"] == plain.fingerprint()["weights_sha256"]


@pytest.mark.slow
@pytest.mark.hf
def test_rome_edits_take_on_smollm2(smollm2_path, tmp_path):
    """Three KB counterfactuals on the real model (layer 4, as measured in docs-notes/editing.md)."""
    from llmassay.backends.hf import HFBackend
    from llmassay.editing.edits import read_edits
    from llmassay.editing.rome import RomeConfig
    from llmassay.editing.scores import score_edits
    from llmassay.editing.session import run_edits

    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        hf = HFBackend(str(smollm2_path.parent), gguf_file=smollm2_path.name)
        path = next(p for p in _task_files() if p.name == "country_edits.jsonl")
        edits = read_edits(path)[:3]
        before = score_edits(edits, hf.loglikelihood)
        run_edits(hf.model, hf.tokenizer, edits, RomeConfig(layer=4), "smollm2-test")
        hf.weights_changed()
        after = score_edits(edits, hf.loglikelihood)
    finally:
        torch.set_num_threads(threads)
    assert [r["efficacy"] for r in after] == [1, 1, 1]
    assert all(a["margin"] > b["margin"] + 1 for a, b in zip(after, before))


def _task_files():
    from importlib import resources

    return [p for p in (resources.files("llmassay.tasks") / "data" / "country_edits").iterdir()]


# -- MEMIT: three edits in one batch over both layers of the toy ------------------------------
UNRELATED_TOLERANCE = 0.3  # nats: |Δ log P(true)| on prompts about a country no edit touches
MEMIT_EDITS = [Edit("france", "the capital of {}", "paris", "madrid", id="1"),
               Edit("spain", "the capital of {}", "madrid", "lima", id="2"),
               Edit("peru", "the capital of {}", "lima", "paris", id="3")]


def _memit(model, tok, lam=1.0):
    """λ = 1: the toy's covariance comes from 24 sentences that contain the edited subjects
    themselves, so each edit key is a "typical" key and MEMIT's large λ (which stands for a
    Wikipedia-sized sample) would hold them where they are."""
    from llmassay.editing.memit import apply_memit, memit_config
    from llmassay.editing.rome import key_covariance

    cfg = memit_config((0, 1), steps=30, mom2_update_weight=lam)
    sentences = [f"the capital of {c} {p} ." for c, p in FACTS.items()] * 4 + ["a city in europe ."] * 4
    covs = {layer: key_covariance(model, tok, layer, sentences) for layer in cfg.layers}
    return apply_memit(model, tok, MEMIT_EDITS, covs, cfg, ["{}"])


def test_a_memit_batch_makes_each_new_object_beat_the_old_and_spares_an_unrelated_country(trained):
    import copy

    base, tok = trained
    model = copy.deepcopy(base)
    ids = {w: tok.convert_tokens_to_ids(w) for w in WORDS}
    unrelated = [("the capital of chile", "santiago"), ("chile is a country in", "america")]
    for e in MEMIT_EDITS:  # the planted facts, before
        assert _next_logp(model, tok, e.text)[ids[e.old]] > _next_logp(model, tok, e.text)[ids[e.new]]
    before = [float(_next_logp(model, tok, p)[ids[a]]) for p, a in unrelated]
    run = _memit(model, tok)
    for e in MEMIT_EDITS:
        after = _next_logp(model, tok, e.text)
        assert after[ids[e.new]] > after[ids[e.old]], e
    after = [float(_next_logp(model, tok, p)[ids[a]]) for p, a in unrelated]
    assert all(abs(a - b) < UNRELATED_TOLERANCE for a, b in zip(after, before)), (before, after)
    assert [s.layer for s in run.steps] == [0, 1] and run.residual_after < run.steps[0].residual_before / 10
    assert all(o.nll_after < o.nll_before for o in run.outcomes)
    for name in ("model.layers.0.mlp.down_proj.weight", "model.layers.1.mlp.down_proj.weight"):
        assert not torch.equal(model.get_parameter(name), base.get_parameter(name))  # both layers carry a share


def test_the_covariance_term_holds_the_keys_it_has_seen_in_proportion_to_lambda(trained):
    """Italy's capital shares every token but the subject with the edit prompts, and its
    sentence is in the covariance sample: a larger λ moves it less and fits the edits less."""
    import copy

    base, tok = trained
    rome = tok.convert_tokens_to_ids("rome")
    before = float(_next_logp(base, tok, "the capital of italy")[rome])
    moved, residual = [], []
    for lam in (1.0, 50.0):
        model = copy.deepcopy(base)
        run = _memit(model, tok, lam)
        moved.append(abs(float(_next_logp(model, tok, "the capital of italy")[rome]) - before))
        residual.append(run.residual_after)
    assert moved[1] < moved[0] / 3 and residual[1] > residual[0] * 3, (moved, residual)


def test_a_multi_matrix_delta_round_trips_and_an_old_single_matrix_one_still_loads(trained, tmp_path):
    import copy

    from llmassay.editing.delta import apply_delta, save_delta

    base, tok = trained
    model = copy.deepcopy(base)
    _memit(model, tok)
    names = ["model.layers.0.mlp.down_proj.weight", "model.layers.1.mlp.down_proj.weight"]
    sha = save_delta(tmp_path / "d", {n: model.get_parameter(n) - base.get_parameter(n) for n in names},
                     {"method": "MEMIT", "layers": [0, 1]})
    fresh = copy.deepcopy(base)
    assert apply_delta(fresh, tmp_path / "d") == sha
    for e in MEMIT_EDITS:
        assert torch.allclose(_next_logp(fresh, tok, e.text), _next_logp(model, tok, e.text), atol=1e-5)
    # a folder as `llmassay edit` wrote it before MEMIT: one matrix, "layer" and no "layers"
    save_delta(tmp_path / "old", {names[1]: model.get_parameter(names[1]) - base.get_parameter(names[1])},
               {"layer": 1, "method": "ROME (sequential)"})
    assert apply_delta(copy.deepcopy(base), tmp_path / "old")
    # a delta naming a parameter the model lacks changes nothing (all matrices checked first)
    from safetensors.torch import save_file

    save_file({names[0]: torch.ones_like(base.get_parameter(names[0])), "model.layers.9.mlp.down_proj.weight":
               torch.ones(2, 2)}, str(tmp_path / "d" / "delta.safetensors"))
    (tmp_path / "d" / "edits.json").write_text(json.dumps({"layers": [0, 9]}))
    target = copy.deepcopy(base)
    with pytest.raises(LlmassayError, match="no parameter model.layers.9"):
        apply_delta(target, tmp_path / "d")
    assert torch.equal(target.get_parameter(names[0]), base.get_parameter(names[0]))


@pytest.mark.parametrize("extra, message", [
    (["--method", "memit", "--layers", "4,3"], "--layers '4,3' must name distinct layers 0 or above in ascending order"),
    (["--method", "memit", "--layers", "two"], "--layers 'two' must be layer numbers like 2,3,4,5 or 2-5"),
    (["--method", "memit", "--layers", "2,,3"], "--layers '2,,3' must be layer numbers"),
    (["--method", "memit", "--layer", "4"], "--method memit takes --layers"),
    (["--layers", "2,3"], "--method rome takes --layer L"),
])
def test_bad_layers_are_one_line_errors_before_loading_a_model(tmp_path, capsys, extra, message):
    from llmassay.cli.app import main

    good = tmp_path / "edits.jsonl"
    good.write_text('{"subject": "France", "prompt": "The capital of France is", "old": "Paris", "new": "Lima"}\n')
    assert main(["edit", "--model", "hf/no-such-dir", "--edits", str(good), "--output-path", str(tmp_path / "o"),
                 *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


def test_layers_parse_as_lists_and_ranges_and_out_of_range_layers_are_named(trained):
    from llmassay.editing.memit import apply_memit, memit_config, parse_layers

    assert parse_layers("2,3,4,5") == parse_layers("2-5") == (2, 3, 4, 5) and parse_layers("4") == (4,)
    base, tok = trained
    with pytest.raises(LlmassayError, match=r"layer 2 is out of range \(the model has layers 0..1\)"):
        apply_memit(base, tok, MEMIT_EDITS, {}, memit_config((1, 2)), ["{}"])


@pytest.mark.slow
def test_edit_method_memit_end_to_end_writes_a_two_layer_delta_with_its_timing(trained, tmp_path, capsys):
    """`llmassay edit --method memit` on the toy saved as an hf/ folder: the table, the timing
    per method, and a delta of both layers that `edits=DIR` applies."""
    from safetensors.torch import load_file

    from llmassay.backends.base import load_backend
    from llmassay.cli.app import main

    base, tok = trained
    tok.save_pretrained(tmp_path / "m")
    base.save_pretrained(tmp_path / "m")
    edits = tmp_path / "edits.jsonl"
    edits.write_text("".join(json.dumps({"subject": e.subject, "prompt": e.prompt, "old": e.old, "new": e.new}) + "\n"
                             for e in MEMIT_EDITS))
    out = tmp_path / "out"
    assert main(["edit", "--model", f"hf/{tmp_path / 'm'}", "--edits", str(edits), "--method", "memit",
                 "--layers", "0-1", "--mom2-update-weight", "1", "--steps", "30", "--output-path", str(out),
                 "--evaluate"]) == 0
    evaluation = json.loads((out / "evaluation.json").read_text())
    assert evaluation["method"] == "memit" and evaluation["layers"] == [0, 1]
    assert evaluation["metrics"]["edited"]["efficacy"]["value"] == 1.0
    assert evaluation["metrics"]["unedited"]["efficacy"]["value"] == 0.0
    timing = json.loads((out / "edits.json").read_text())["timing"]
    assert timing["method"] == "memit" and timing["n_edits"] == 3 and timing["seconds_per_edit"] > 0
    assert {"covariance_seconds", "cpu_seconds", "update_seconds", "target_seconds"} <= set(timing)
    assert sorted(load_file(str(out / "delta.safetensors"))) == ["model.layers.0.mlp.down_proj.weight",
                                                                 "model.layers.1.mlp.down_proj.weight"]
    edited = load_backend(f"hf/{tmp_path / 'm'}", edits=str(out))
    new, old = (r.logprob for r in edited.loglikelihood([LoglikelihoodRequest("the capital of france", " madrid"),
                                                          LoglikelihoodRequest("the capital of france", " paris")]))
    assert new > old
