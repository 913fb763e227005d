"""The strategies probe recovers planted gains: a backend that is right only after worked
exemplars (k-shot gain), one whose noisy samples are right 60 % of the time and wrong in
scattered ways (self-consistency gain, none for greedy CoT), and one whose right answers
do not depend on the prompt at all (no gain, whatever the tokens spent)."""

from __future__ import annotations

import re

import numpy as np
import pytest
from fakes import ScriptedBackend, _digest, prompt_of

from llmassay.evaluation import RunConfig, evaluate
from llmassay.probes._answer_format import ANSWER_ONLY
from llmassay.probes.strategies import ANSWER_CUE, CHAT_ANSWER, majority, read_answer
from llmassay.tasks.loader import load_task
from llmassay.types import GenerateRequest, LlmassayError

TASK = "arith_sample"
TRUTH = {s.doc["input"]: str(s.target) for s in load_task(TASK).samples}
_QUESTION = re.compile(r"Question: (.*)\n")


def question(req: GenerateRequest) -> str:
    return _QUESTION.findall(prompt_of(req))[-1]


def wrong(q: str, salt: str = "") -> str:
    """A wrong answer, scattered over 50 values so that wrong samples rarely agree."""
    return str(int(TRUTH[q]) + 1 + _digest(q, salt) % 50)


def is_answer_stage(req: GenerateRequest) -> bool:
    text = prompt_of(req)
    return text.endswith(ANSWER_CUE) or text.endswith(CHAT_ANSWER)


def exemplar_backend() -> ScriptedBackend:
    """Right only when the prompt shows worked exemplars; reasoning never helps."""

    def answer(req: GenerateRequest) -> str:
        q = question(req)
        if req.max_tokens > 12:  # a reasoning step
            return "Some thoughts about the numbers."
        shots = prompt_of(req).count("Question:") - 1
        return f" {TRUTH[q]}" if shots >= 1 and not is_answer_stage(req) else f" {wrong(q)}"

    return ScriptedBackend(lambda c, x: 0.0, answer, identity="exemplars")


def noisy_backend(p_right: float = 0.6) -> ScriptedBackend:
    """Greedy: always wrong. Sampled reasoning ends in the right answer with probability
    `p_right` (a hash of question and sample), else a scattered wrong one; the answer stage
    repeats what the reasoning concluded."""

    def answer(req: GenerateRequest) -> str:
        q = question(req)
        if req.max_tokens > 12:
            if req.temperature == 0:
                return f"I think it is {wrong(q)}."
            right = _digest(q, str(req.repeat)) % 1000 < p_right * 1000
            return f"I think it is {TRUTH[q] if right else wrong(q, str(req.repeat))}."
        if is_answer_stage(req):
            return " " + re.findall(r"I think it is (-?\d+)", prompt_of(req))[-1]
        return f" {wrong(q)}"

    return ScriptedBackend(lambda c, x: 0.0, answer, identity="noisy")


def fixed_backend() -> ScriptedBackend:
    """Right on a fixed 40 % of questions whatever it is asked: no strategy can help."""

    def answer(req: GenerateRequest) -> str:
        q = question(req)
        if req.max_tokens > 12:
            return "Let me compute this carefully, step by step, as asked."
        return f" {TRUTH[q] if _digest(q) % 10 < 4 else wrong(q)}"

    return ScriptedBackend(lambda c, x: 0.0, answer, identity="fixed")


def run(tmp_path, backend, limit=40, **options):
    cfg = RunConfig(model="test/scripted", tasks=[TASK], probes=["strategies"], output_path=str(tmp_path / "out"),
                    cache_path=str(tmp_path / "cache.sqlite"), limit=limit,
                    probe_options={f"strategies.{k}": v for k, v in options.items()})
    results = evaluate(cfg, backend=backend).results
    summary = [line for line in results["summary"] if line["probe"] == "strategies"]
    return {"metrics": results["results"][TASK]["strategies"], "details": results["details"][TASK]["strategies"],
            "summary": summary[0] if summary else None}


def table(out):
    return {e["strategy"]: e for e in out["details"]["strategies"]}


def test_exemplars_planted_gain_is_recovered(tmp_path) -> None:
    out = run(tmp_path, exemplar_backend(), strategies="icl1,icl3,cot")
    t = table(out)
    assert t["zero_shot"]["acc"] == 0.0
    for name in ("icl1", "icl3", "icl3@order1", "icl3@order2"):
        assert t[name]["acc"] == 1.0
    assert t["icl3"]["mcnemar_p"] < 1e-6 and t["icl3"]["verdict"].startswith("gain of +100%")
    assert t["icl3"]["cost_ratio"] > t["icl1"]["cost_ratio"] > 1  # exemplars cost prompt tokens
    assert t["cot"]["acc"] == 0.0 and t["cot"]["verdict"].startswith("no significant gain")
    assert out["summary"]["verdict"].startswith("icl1: gain of +100%")
    assert out["details"]["exemplar_order"]["spread"] == 0.0


def test_self_consistency_planted_gain_and_pass_at_k(tmp_path) -> None:
    out = run(tmp_path, noisy_backend(0.6), limit=60, strategies="cot,sc", k=5)
    t = table(out)
    assert t["zero_shot"]["acc"] == 0.0 and t["cot"]["acc"] == 0.0  # greedy reasoning is always wrong
    m = out["metrics"]
    assert m["sc_sample_acc"]["ci_low"] <= 0.6 <= m["sc_sample_acc"]["ci_high"]  # planted per-sample accuracy
    # Exact expectation: with scattered wrong answers, the majority is right iff ≥ 2 of 5 are right
    # (or 1 right and it came first among 5 singletons).
    assert t["sc"]["acc"] > 0.8 and t["sc"]["mcnemar_p"] < 1e-6
    assert t["sc"]["pass_at_k"] >= t["sc"]["acc"] and t["sc"]["pass_at_k"] > 0.9
    assert t["sc"]["cost_ratio"] > 4 * t["cot"]["cost_ratio"] / 1.5  # k chains cost about k times one


def test_no_gain_is_said_in_those_words(tmp_path) -> None:
    out = run(tmp_path, fixed_backend(), strategies="icl3,cot,sc,ltm", k=3)
    t = table(out)
    base = t["zero_shot"]["acc"]
    assert 0.2 < base < 0.7
    for name in ("icl3", "cot", "sc", "ltm"):
        assert t[name]["acc"] == base and t[name]["mcnemar_p"] == 1.0
        assert t[name]["verdict"].startswith(f"no significant gain at {t[name]['cost_ratio']:.1f}× the cost")
    assert t["ltm"]["cost_ratio"] > t["cot"]["cost_ratio"] > 1  # three stages cost more than two
    assert out["summary"]["verdict"].startswith("no strategy beats zero-shot significantly")


def test_prompts_exemplars_orders_and_reproducibility(tmp_path) -> None:
    backend = fixed_backend()
    first = run(tmp_path, backend, limit=5, strategies="icl3", orders=2)
    direct = [prompt_of(r) for r in backend.asked if r.max_tokens <= 12]
    shots = sorted({p.count("Question:") for p in direct})
    assert shots == [1, 4]  # zero-shot and 3 exemplars
    by_item: dict[str, list[str]] = {}
    for p in direct:
        if p.count("Question:") == 4:
            by_item.setdefault(question(GenerateRequest(prompt=p)), []).append(p)
    for prompts in by_item.values():  # the orders: the same exemplars, shuffled
        assert len(prompts) >= 2
        blocks = [sorted(p.split("\n\n")[:-1]) for p in prompts]
        assert all(b == blocks[0] for b in blocks)
    again = run(tmp_path / "again", fixed_backend(), limit=5, strategies="icl3", orders=2)
    assert again["metrics"] == first["metrics"] and again["details"] == first["details"]


def test_chat_models_get_the_template_except_for_k_shot(tmp_path) -> None:
    backend = fixed_backend()
    backend.chat_model = lambda: True
    out = run(tmp_path, backend, limit=4, strategies="icl1,cot", k=2)
    t = table(out)
    assert t["zero_shot"]["chat_template"] and t["cot"]["chat_template"] and not t["icl1"]["chat_template"]
    chats = [r for r in backend.asked if r.messages is not None]
    assert any(r.messages[-1] == ("user", CHAT_ANSWER) and r.messages[1][0] == "assistant" for r in chats)
    assert any(r.messages == (("user", ANSWER_ONLY + "\n\nQuestion: " + question(r) + "\nAnswer:"),) for r in chats)
    raw = [r for r in backend.asked if r.prompt is not None]
    assert raw and all(r.prompt.count("Question:") == 2 for r in raw)


def test_answer_reading_and_majority() -> None:
    assert read_answer(" 74 legs.\nQuestion: …", "74") == "74"
    assert read_answer("The total is -3.", "-3") == "-3"
    assert read_answer(" Paris.\nmore", "paris") == "paris"
    assert majority(["3", "", "4", "4", "3"]) == "3" and majority(["", ""]) == ""


def test_unknown_strategy_is_a_one_line_error(tmp_path) -> None:
    with pytest.raises(LlmassayError, match="unknown strategies tot"):
        run(tmp_path, fixed_backend(), strategies="cot,tot")


def test_multiple_choice_tasks_are_refused(tmp_path) -> None:
    cfg = RunConfig(model="test/scripted", tasks=["mmlu_sample"], probes=["strategies"],
                    output_path=str(tmp_path / "o"), cache_path=str(tmp_path / "c.sqlite"), limit=2)
    with pytest.raises(LlmassayError, match="needs generate_until"):
        evaluate(cfg, backend=fixed_backend())


def test_the_bundled_reasoning_tasks_load() -> None:
    for name in ("legs_sample", "letters_sample"):
        task = load_task(name)
        assert len(task.samples) == 100 and all(str(s.target).isdigit() for s in task.samples)
        assert task.samples[0].prompt.startswith("Question: ") and task.samples[0].prompt.endswith("\nAnswer:")
    assert np.mean([int(s.target) for s in load_task("legs_sample").samples]) > 10


def test_report_shows_the_cost_accuracy_plane(tmp_path) -> None:
    from llmassay.report import write_report

    run(tmp_path, fixed_backend(), limit=6, strategies="icl1,cot,sc", k=2)
    html = (write_report(str(tmp_path / "out"), None)).read_text()
    assert "accuracy vs tokens spent" in html and "strategies against zero-shot" in html
    assert "no significant gain at" in html
