"""Log-likelihood verdicts through the judge's chat template: an instruct judge that
answers well only inside its template is calibrated (accuracy 1) under `auto` and `on`,
always-first (accuracy 1/2, first-slot rate 1) under `off`; what was used is recorded; a
backend that cannot render its template as scorable text stays raw under `auto` and is a
one-line error under `on`. The rule is the accuracy probe's (`wants_chat_template`)."""

from __future__ import annotations

import pytest

from fakes import TemplatedJudgeBackend, judge_backend
from judge_runs import QUESTIONS, two_runs
from llmassay.engine.chat import wants_chat_template
from llmassay.engine.engine import Engine
from llmassay.judge.chat import NO_LLAMACPP, chat_renderer
from llmassay.judge.judges import load_judge, loglik_judge
from llmassay.judge.session import JudgeConfig, run_judgement
from llmassay.types import LlmassayError

from llmassay.judge.calibration import question_of
from llmassay.tasks.loader import load_task

KEY = {q: t for _, q, t in QUESTIONS} | {question_of(s): str(s.target)
                                         for s in load_task("arith_sample", num_fewshot=0).limited(8).samples}


def _judge_with(backend, setting):
    chat = wants_chat_template(setting, bool(getattr(backend, "chat_model", lambda: False)()))
    return loglik_judge(Engine(backend), backend, "templated", False, 0, chat, forced=setting == "on")


def test_the_rule_is_the_accuracy_probes():
    assert [wants_chat_template(s, True) for s in ("auto", "on", "off")] == [True, True, False]
    assert [wants_chat_template(s, False) for s in ("auto", "on", "off")] == [False, True, False]
    assert wants_chat_template("auto", True, num_fewshot=3) is False


@pytest.mark.parametrize(("setting", "templated", "accuracy", "first_slot"),
                         [("auto", True, 1.0, 0.0), ("on", True, 1.0, 0.0), ("off", False, 0.5, 0.5)])
def test_loglik_judge_scores_through_the_template(tmp_path, setting, templated, accuracy, first_slot):
    a, b = two_runs(tmp_path)
    backend = TemplatedJudgeBackend(KEY.get)
    result = run_judgement(JudgeConfig(str(a), str(b), "templated", str(tmp_path / "j"), calibrate="arith_sample",
                                       calibration_limit=8, repeats=0), _judge_with(backend, setting))
    assert result["judge"]["chat_template"] is templated
    assert result["judge"]["template"] == ("TemplatedJudgeBackend.chat_prompt" if templated else "none (raw prompt)")
    contexts = [r.context for r in backend.asked]
    assert contexts and all(c.startswith("<|user|>\n") is templated for c in contexts)
    if templated:
        assert all(c.endswith("\n<|assistant|>\n[[") for c in contexts)
    cal = result["calibration"]["metrics"]
    assert cal["accuracy"]["value"] == accuracy
    # Run A is right on q0-q2, B on q3-q4 (q5 is hostile): the templated judge says so;
    # the raw one names slot A in both orders, so every pair is inconsistent.
    metrics = result["metrics"]
    assert metrics["first_slot_bias"]["value"] == first_slot
    assert metrics["position_consistency"]["value"] == (1.0 if templated else 0.0)


def test_without_a_renderable_template_auto_stays_raw_and_on_is_an_error():
    plain = judge_backend("first")
    plain.chat_model = lambda: True  # a chat model whose backend cannot render its template as text
    judge = _judge_with(plain, "auto")
    assert judge.chat is None and judge.describe()["template"].startswith("none (raw prompt): a chat model, but")
    with pytest.raises(LlmassayError, match="--chat-template on: templated cannot score through its chat template"):
        _judge_with(plain, "on")
    with pytest.raises(LlmassayError, match="--chat-template maybe: unknown"):
        load_judge("llamacpp/none", verdict="loglik", chat_template="maybe")


def test_llamacpp_and_hf_renderers():
    class Llama:
        llm = object()

    class Tokenizer:
        chat_template = "{{ messages }}"

        def apply_chat_template(self, messages, tokenize, add_generation_prompt):
            assert tokenize is False and add_generation_prompt is True
            return f"<s>[user] {messages[0]['content']} [assistant]"

    class Hf:
        tokenizer = Tokenizer()

    assert chat_renderer(Llama()) == (None, NO_LLAMACPP)
    render, how = chat_renderer(Hf())
    assert render("judge this") == "<s>[user] judge this [assistant]" and "HF tokenizer" in how


def test_calibration_probe_loglik_uses_the_template_of_a_chat_model(tmp_path):
    """`-P judge_calibration.verdict=loglik` on a chat model: through its template (the
    templated judge is right on every planted pair), and the results say which template."""
    from llmassay.evaluation import RunConfig, evaluate

    backend = TemplatedJudgeBackend(KEY.get)
    out = evaluate(
        RunConfig(model="test/templated", tasks=["arith_sample"], probes=["judge_calibration"], limit=8, num_fewshot=0,
                  output_path=str(tmp_path / "run"), cache_path=str(tmp_path / "c.sqlite"),
                  probe_options={"judge_calibration.verdict": "loglik"}),
        backend=backend,
    )
    assert backend.asked and all(r.context.startswith("<|user|>\n") for r in backend.asked)
    assert out.results["results"]["arith_sample"]["judge_calibration"]["accuracy"]["value"] == 1.0
    assert "TemplatedJudgeBackend.chat_prompt" in out.results_path.read_text()
