"""Decay over sequential edits, CounterFact's one-at-a-time protocol and the retrieval column
(issue #34), on the tiny Llama of test_editing (planted capitals) and on a planted engine.

Planted truths: a checkpoint after n edits scores exactly the first n edits and its folder
holds the weights after n edits; retention measured right after one edit is that edit's
efficacy; a resumed run edits only what is left; general accuracy's paired gap is the
planted change; one-at-a-time scoring leaves the weights as they were; a retrieved passage
carrying the new object makes it win where the unedited model did not.
"""

from __future__ import annotations

import copy
import json
import math

import pytest
from test_editing import FACTS, _next_logp, _tokenizer, _train

from llmassay.editing.edits import Edit, Neighbour
from llmassay.editing.scores import columns_table, score_edits
from llmassay.types import LlmassayError, LoglikelihoodResult

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

NEW = {"france": "lima", "spain": "rome", "italy": "paris", "peru": "madrid", "chile": "rome"}
EDITS = [Edit(c, "the capital of {}", p, NEW[c], ("the capital of the {}",),
              (Neighbour("the capital of spain" if c != "spain" else "the capital of peru",
                         "madrid" if c != "spain" else "lima"),), c) for c, p in FACTS.items()]
# planted general-task items (options' log-likelihoods, gold first): unedited, after any edit
GENERAL = ([[-1.0, -2.0], [-1.0, -3.0], [-2.0, -1.0], [-3.0, -1.0]],
           [[-1.0, -2.0], [-2.0, -1.0], [-2.0, -1.0], [-3.0, -1.0]])


@pytest.fixture(scope="module")
def trained():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        tok = _tokenizer()
        yield _train(tok), tok
    finally:
        torch.set_num_threads(threads)


def _cfg():
    from llmassay.editing.rome import RomeConfig

    return RomeConfig(layer=1, steps=30, n_prefixes=0)  # a 2-layer toy writes no useful prefixes


def _cov(model, tok):
    from llmassay.editing.rome import key_covariance

    sentences = [f"the capital of {c} {p} ." for c, p in FACTS.items()] * 4 + ["a city in europe ."] * 4
    return key_covariance(model, tok, 1, sentences)


def _loglikelihood(model, tok):
    """Exact continuation log-probabilities of the toy (word-level: one token per word)."""
    def ll(reqs):
        out = []
        for r in reqs:
            ids = tok(r.context + r.continuation)["input_ids"]
            n = len(tok(r.continuation.strip())["input_ids"])
            with torch.no_grad():
                logp = torch.log_softmax(model(torch.tensor([ids])).logits[0], -1)
            out.append(LoglikelihoodResult(float(sum(logp[i - 1, ids[i]] for i in range(len(ids) - n, len(ids)))),
                                           False, n))
        return out
    return ll


def _hooks(model, tok, calls):
    from llmassay.editing.decay import DecayHooks
    from llmassay.editing.delta import save_delta
    from llmassay.editing.rome import apply_edit, down_proj, param_name

    cfg, cov = _cfg(), _cov(model, tok)
    weight = down_proj(model, 1).weight
    original = weight.detach().clone()

    def apply(edit):
        calls.append(edit.id)
        return apply_edit(model, tok, edit, cov, cfg, ["{}"])

    def general():
        from llmassay.editing.decay import general_item

        return [general_item(ll, 0, ll[0] > ll[1]) for ll in (GENERAL[0] if not calls else GENERAL[1])]

    return DecayHooks(apply=apply, score=lambda es: score_edits(es, _loglikelihood(model, tok)),
                      snapshot=lambda d, n: save_delta(d, {param_name(model, 1): weight.detach() - original},
                                                       {"layer": 1, "n_edits": n}),
                      general=general)


def test_decay_checkpoints_score_the_edits_so_far_and_keep_every_checkpoints_weights(trained, tmp_path):
    from llmassay.editing.decay import DecayLog, decay_plot, run_decay
    from llmassay.editing.delta import apply_delta

    base, tok = trained
    model, calls = copy.deepcopy(base), []
    log = run_decay(EDITS, (1, 3, 5), _hooks(model, tok, calls), DecayLog.open(tmp_path, {"s": 1}))
    points = log.doc["checkpoints"]
    assert [p["n_edits"] for p in points] == [1, 3, 5] and calls == [e.id for e in EDITS]
    assert [len(p["rows"]) for p in points] == [1, 3, 5]
    assert [p["retention"]["n"] for p in points] == [1, 3, 5]
    assert [p["table"]["columns"]["unedited"]["efficacy"]["n"] for p in points] == [1, 3, 5]
    seconds = [p["edit_seconds"] for p in points]
    assert seconds == sorted(seconds) and len(log.doc["outcomes"]) == 5 == len(log.doc["edit_hashes"])
    assert len(log.doc["baseline"]["rows"]) == 5 and log.doc["baseline"]["general"]["value"] == 0.5
    last = points[-1]
    assert last["general"]["value"] == 0.25 and last["general_gap"]["value"] == pytest.approx(-0.25)
    assert last["general_gap"]["ci_low"] < -0.2 < 0 <= last["general_gap"]["ci_high"] + 0.5
    # the continuous measures: the gold option's log-likelihood fell by 1 nat on one item of 4
    assert log.doc["baseline"]["general_gold_loglik"]["value"] == pytest.approx(-7 / 4)
    assert last["general_gold_loglik_gap"]["value"] == pytest.approx(-0.25)
    assert last["general_gold_loglik_gap"]["ci_low"] < -0.2 and last["general_gold_loglik_gap"]["ci_high"] <= 0
    p_after, p_before = 1 / (1 + math.e), 1 / (1 + math.exp(-2))  # item 2's gold among (-2, -1), was (-1, -3)
    assert last["general_gold_prob_items"][1] == pytest.approx(p_after)
    assert last["general_gold_prob_gap"]["value"] == pytest.approx((p_after - p_before) / 4)
    # the checkpoint folder is the model after 5 edits
    fresh = copy.deepcopy(base)
    apply_delta(fresh, tmp_path / "checkpoints" / "5")
    assert torch.allclose(_next_logp(fresh, tok, "the capital of peru"), _next_logp(model, tok, "the capital of peru"),
                          atol=1e-5)
    saved = json.loads((tmp_path / "decay.json").read_text())
    assert [p["n_edits"] for p in saved["checkpoints"]] == [1, 3, 5]
    svg = decay_plot(saved)
    assert svg.startswith("<svg") and "edits made" in svg


def test_retention_right_after_one_edit_is_that_edits_efficacy(trained, tmp_path):
    from llmassay.editing.decay import DecayLog, run_decay
    from llmassay.editing.rome import apply_edit

    base, tok = trained
    model = copy.deepcopy(base)
    log = run_decay(EDITS, (1,), _hooks(model, tok, []), DecayLog.open(tmp_path, {}))
    alone = copy.deepcopy(base)
    apply_edit(alone, tok, EDITS[0], _cov(alone, tok), _cfg(), ["{}"])
    row = score_edits(EDITS[:1], _loglikelihood(alone, tok))[0]
    point = log.doc["checkpoints"][0]
    assert row["efficacy"] == 1 and point["retention"]["value"] == row["efficacy"] == point["first_edit"]["efficacy"]
    assert point["first_edit"]["margin"] == pytest.approx(row["margin"], abs=1e-4)


def test_a_rerun_resumes_after_the_last_checkpoint_and_refuses_other_settings(trained, tmp_path):
    from llmassay.editing.decay import DecayLog, run_decay
    from llmassay.editing.delta import apply_delta

    base, tok = trained
    first, calls = copy.deepcopy(base), []
    run_decay(EDITS, (1, 3), _hooks(first, tok, calls), DecayLog.open(tmp_path, {"s": 1}))
    with pytest.raises(LlmassayError, match="other settings"):
        DecayLog.open(tmp_path, {"s": 2})
    log = DecayLog.open(tmp_path, {"s": 1})
    assert log.done == 3
    resumed = copy.deepcopy(base)
    apply_delta(resumed, log.checkpoint_dir(3))
    more = ["x"] * 3  # the weights already hold 3 edits: the general hook sees an edited model
    run_decay(EDITS, (1, 3, 5), _hooks(resumed, tok, more), log)
    assert more[3:] == ["peru", "chile"]  # only the edits left were made
    assert [p["n_edits"] for p in log.doc["checkpoints"]] == [1, 3, 5] and len(log.doc["outcomes"]) == 5
    straight = copy.deepcopy(base)
    whole = run_decay(EDITS, (5,), _hooks(straight, tok, []), DecayLog.open(tmp_path / "b", {}))
    assert ([r["efficacy"] for r in log.doc["checkpoints"][-1]["rows"]]
            == [r["efficacy"] for r in whole.doc["checkpoints"][-1]["rows"]])
    with pytest.raises(LlmassayError, match="not this file's"):
        run_decay(EDITS[::-1], (5,), _hooks(copy.deepcopy(base), tok, []), DecayLog.open(tmp_path, {"s": 1}))


def test_one_edit_at_a_time_restores_the_weights_and_scores_each_edit_alone(trained, tmp_path, monkeypatch):
    from llmassay.editing import session

    base, tok = trained
    model = copy.deepcopy(base)
    monkeypatch.setattr(session, "covariance", lambda m, t, c, i, n=0: (_cov(m, t), 0.0))
    monkeypatch.setattr(session, "context_templates", lambda m, t, c: ["{}"])
    before = {k: v.clone() for k, v in model.state_dict().items()}
    run = session.run_single(model, tok, EDITS[:3], _cfg(), "toy",
                             lambda e: score_edits([e], _loglikelihood(model, tok))[0])
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert [r["id"] for r in run.rows] == ["france", "spain", "italy"] and len(run.outcomes) == 3
    alone = copy.deepcopy(base)
    from llmassay.editing.rome import apply_edit

    apply_edit(alone, tok, EDITS[1], _cov(alone, tok), _cfg(), ["{}"])
    assert run.rows[1]["margin"] == pytest.approx(score_edits([EDITS[1]], _loglikelihood(alone, tok))[0]["margin"],
                                                  abs=1e-4)


def test_the_general_measures_are_the_engines_loglikelihoods_and_an_unchanged_model_moves_by_zero(tmp_path):
    """`edit --decay`'s general hook (the accuracy probe's scoring) on a planted backend: each
    item's gold log-likelihood is exactly the backend's for the gold option, its probability
    the softmax over the options; a model the edits leave unchanged has every paired gap 0
    with a zero-width interval; a changed one moves by the mean of the per-item changes."""
    from fakes import hashed_backend

    from llmassay.cli.edit import _general
    from llmassay.editing.decay import DecayHooks, DecayLog, run_decay
    from llmassay.editing.rome import EditOutcome
    from llmassay.metrics import softmax
    from llmassay.tasks.loader import load_task
    from llmassay.types import LoglikelihoodRequest

    task = load_task("mmlu_sample", seed=0).with_metrics(["acc"]).limited(12)
    backend = hashed_backend("before")
    backend.weights_changed = lambda: None
    items = _general(backend, task, 0)()

    def expected(b):
        out = []
        for s in task.samples:
            ll = [r.logprob for r in b.loglikelihood(
                [LoglikelihoodRequest(s.prompt, task.target_delimiter + c) for c in s.choices])]
            out.append((ll[s.target], float(softmax(ll)[s.target]), int(max(ll) == ll[s.target])))
        return out

    want = expected(backend)
    assert [i["gold_loglik"] for i in items] == [w[0] for w in want]  # exactly the engine's numbers
    assert [i["gold_prob"] for i in items] == pytest.approx([w[1] for w in want], abs=1e-12)
    assert [i["correct"] for i in items] == [w[2] for w in want]

    def outcome(e):
        return EditOutcome(e.id, 1.0, 0.1, 0.0, 0.0)

    row = {"efficacy": 1, "margin": 1.0, "paraphrase": 1.0, "neighbourhood": 1.0}
    hooks = DecayHooks(apply=outcome, score=lambda es: [dict(row, id=e.id) for e in es], snapshot=lambda d, n: None,
                       general=_general(backend, task, 0))
    log = run_decay(EDITS, (1, 2), hooks, DecayLog.open(tmp_path / "same", {}))
    for point in log.doc["checkpoints"]:
        for key in ("general_gap", "general_gold_loglik_gap", "general_gold_prob_gap"):
            assert point[key]["value"] == 0.0
        for key in ("general_gold_loglik_gap", "general_gold_prob_gap"):
            assert point[key]["ci_low"] == point[key]["ci_high"] == 0.0
    changed = hashed_backend("after")  # "the edits changed the model": other log-likelihoods
    changed.weights_changed = lambda: None
    state = {"backend": backend}

    def apply(e):
        state["backend"] = changed
        return outcome(e)

    hooks = DecayHooks(apply=apply, score=hooks.score, snapshot=hooks.snapshot,
                       general=lambda: _general(state["backend"], task, 0)())
    log = run_decay(EDITS, (1,), hooks, DecayLog.open(tmp_path / "moved", {}))
    after, gap = expected(changed), log.doc["checkpoints"][0]["general_gold_loglik_gap"]
    assert gap["value"] == pytest.approx(sum(a[0] - b[0] for a, b in zip(after, want)) / len(want))
    assert gap["n"] == 12 and gap["ci_low"] < gap["value"] < gap["ci_high"]


# -- retrieval from the edited KB, on a planted engine --------------------------------------
class _ReaderEngine:
    """Memory says Paris and Madrid; an object named in the context's passages wins (-0.5)."""

    memory = {("The capital of France is", "Paris"): -1.0, ("France's capital is", "Paris"): -1.0,
              ("The capital of Spain is", "Madrid"): -1.0}

    def loglikelihood(self, reqs):
        out = []
        for r in reqs:
            context, _, prompt = r.context.rpartition("\n\n")
            obj = r.continuation.strip()
            value = -0.5 if obj in context else self.memory.get((prompt, obj), -3.0)
            out.append(LoglikelihoodResult(value, False, 1))
        return out


def _france():
    return Edit("France", "The capital of {} is", "Paris", "Lima", ("{}'s capital is",),
                (Neighbour("The capital of Spain is", "Madrid"),), "FR.capital")


def test_a_retrieved_passage_with_the_new_object_makes_it_win_where_memory_did_not():
    pytest.importorskip("bm25s")
    from llmassay.editing.retrieval import edited_index, rag_rows

    edit, engine = _france(), _ReaderEngine()
    index = edited_index([(edit.id, edit)])
    assert "The capital of France is Lima." in [index.kb.passages[i].text for i in index.search(edit.text, 3)]
    plain = score_edits([edit], engine.loglikelihood)
    rag = rag_rows([edit], index, 3, engine.loglikelihood)
    assert (plain[0]["efficacy"], plain[0]["paraphrase"], plain[0]["neighbourhood"]) == (0, 0.0, 1.0)
    assert (rag[0]["efficacy"], rag[0]["paraphrase"], rag[0]["neighbourhood"]) == (1, 1.0, 1.0)
    assert rag[0]["margin"] == pytest.approx(-0.5 - -1.0) and "FR.capital" in rag[0]["retrieved"]
    table = columns_table({"unedited": plain, "unedited + retrieval": rag})
    gap = table["gaps"]["unedited + retrieval − unedited"]
    assert gap["efficacy"].value == 1.0 and gap["neighbourhood"].value == 0.0
    assert table["columns"]["unedited + retrieval"]["efficacy"].value == 1.0


def test_the_editing_probe_adds_the_retrieval_scores_and_their_paired_gap():
    pytest.importorskip("bm25s")
    from types import SimpleNamespace

    from llmassay.probes.editing import EditingProbe
    from llmassay.types import Sample

    edit = _france()
    doc = {"id": "FR.capital", "subject": "France", "prompt": edit.prompt, "old": "Paris", "new": "Lima",
           "paraphrases": list(edit.paraphrases), "neighbourhood": [{"prompt": "The capital of Spain is", "true": "Madrid"}]}
    samples = [Sample("0", doc["prompt"], ["Lima", "Paris"], 0, doc)]
    task = SimpleNamespace(name="planted", samples=samples)
    probe = EditingProbe()
    opts = probe.options({"rag": "bm25", "fluency_tokens": 0})
    rows = probe.evaluate(task, samples, _ReaderEngine(), opts, None)
    assert rows[0]["efficacy"] == 0 and rows[0]["rag_efficacy"] == 1 and rows[0]["id"] == "0"
    metrics = probe.analyse(task, rows, opts, None).metrics
    assert metrics["rag_efficacy"].value == 1.0 and metrics["rag_gap_efficacy"].value == 1.0
    assert "rag_efficacy" not in probe.evaluate(task, samples, _ReaderEngine(), probe.options({"fluency_tokens": 0}), None)[0]


def test_retrieval_needs_edit_ids_that_name_kb_facts():
    pytest.importorskip("bm25s")
    from llmassay.editing.retrieval import edited_index

    with pytest.raises(LlmassayError, match="edit 'france': retrieval needs the edit's id to name a KB fact"):
        edited_index([(e.id, e) for e in EDITS])


@pytest.mark.parametrize("extra, message", [
    (["--decay", "1,x"], "--decay '1,x': 'x' is not a whole number"),
    (["--decay", "10,1"], "checkpoints must increase"),
    (["--decay", "9"], "--decay's last checkpoint is 9 edits"),
    (["--decay", "1", "--evaluate"], "leave out --evaluate"),
    (["--evaluate", "--rag", "bm25"], "edit '1': retrieval needs the edit's id"),
])
def test_the_edit_command_refuses_bad_decay_and_rag_settings_before_loading_a_model(tmp_path, capsys, extra, message):
    from llmassay.cli.app import main

    if "bm25" in extra:
        pytest.importorskip("bm25s")
    edits = tmp_path / "edits.jsonl"
    edits.write_text('{"subject": "France", "prompt": "The capital of France is", "old": "Paris", "new": "Lima"}\n')
    args = ["edit", "--model", "hf/no-such-dir", "--edits", str(edits), "--layer", "1", "--output-path",
            str(tmp_path / "o"), *extra]
    assert main(args) == 2
    assert message in capsys.readouterr().err
