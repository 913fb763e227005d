"""The accuracy probe on scripted backends: only what the metrics need is asked, and free
generation goes through the chat template exactly when `chat_template` says so."""

from __future__ import annotations

import pytest

from fakes import ScriptedBackend, answer_key_backend, prompt_of
from llmassay.evaluation import RunConfig, evaluate
from llmassay.probes._answer_format import LETTER_ONLY
from llmassay.tasks.loader import load_task
from llmassay.types import GenerateRequest, LlmassayError

MMLU = load_task("mmlu_sample").samples[:12]
KEY = {s.prompt: "ABCD"[int(s.target)] for s in MMLU}


class NoLogprobs(ScriptedBackend):
    """A chat endpoint that returns no prompt log-probabilities (most hosted APIs)."""

    def __init__(self, chat: bool = False) -> None:
        inner = answer_key_backend(lambda prompt: next((v for k, v in KEY.items() if k in prompt), None))
        super().__init__(inner._score, inner._answer, identity="no-logprobs")
        self.chat = chat

    def loglikelihood(self, reqs):
        raise LlmassayError("openai: this endpoint does not return echoed prompt log-probabilities")

    def chat_model(self) -> bool:
        return self.chat


def run(tmp_path, backend, **kwargs):
    cfg = RunConfig(model="test/x", tasks=["mmlu_sample"], limit=12, output_path=str(tmp_path / "o"),
                    use_cache=False, **kwargs)
    return evaluate(cfg, backend=backend)


def test_acc_gen_alone_asks_for_generations_only(tmp_path):
    backend = NoLogprobs()
    out = run(tmp_path, backend, metrics=["acc_gen"])
    assert all(isinstance(r, GenerateRequest) for r in backend.asked) and len(backend.asked) == 12
    m = out.results["results"]["mmlu_sample"]["accuracy"]
    assert (m["acc_gen"]["value"], m["gen_parsed"]["value"]) == (1.0, 1.0)  # the key's answers, parsed
    assert set(m) == {"acc_gen", "gen_parsed"}
    row = out.probe_results[0].samples[0]
    assert "loglikelihoods" not in row and "acc" not in row


@pytest.mark.parametrize("setting, chat_model, via_chat", [
    ("auto", True, True), ("auto", False, False), ("on", False, True), ("off", True, False),
])
def test_chat_template_setting_decides_how_generations_are_sent(tmp_path, setting, chat_model, via_chat):
    backend = NoLogprobs(chat=chat_model)
    out = run(tmp_path, backend, metrics=["acc_gen"], probe_options={"accuracy.chat_template": setting})
    sent = [r for r in backend.asked if isinstance(r, GenerateRequest)]
    assert all((r.messages is not None) == via_chat for r in sent)
    if via_chat:  # the whole prompt is the user's turn (after the answer's format), as lm-eval's --apply_chat_template
        turn = sent[0].messages[0][1]
        assert len(sent[0].messages) == 1 and turn.startswith(LETTER_ONLY + "\n\n") and turn[len(LETTER_ONLY) + 2:] in KEY
    else:
        assert prompt_of(sent[0]) in KEY
    assert out.results["details"]["mmlu_sample"]["accuracy"]["chat_template"] is via_chat
    assert out.results["probes"]["accuracy"]["options"] == {"chat_template": setting, "chat_format": "instruct"}
    assert out.results["model"]["chat_template"] is chat_model


def test_auto_keeps_a_few_shot_transcript_raw(tmp_path):
    """A few-shot block is for a model to continue, not a user turn: auto leaves it raw."""
    backend = NoLogprobs(chat=True)
    out = run(tmp_path, backend, metrics=["acc_gen"], num_fewshot=2)
    assert all(r.prompt is not None for r in backend.asked)
    assert out.results["details"]["mmlu_sample"]["accuracy"]["chat_template"] is False
    backend = NoLogprobs(chat=True)
    run(tmp_path / "on", backend, metrics=["acc_gen"], num_fewshot=2, probe_options={"accuracy.chat_template": "on"})
    assert all(r.messages is not None for r in backend.asked)


def test_a_bad_chat_template_value_is_one_line(tmp_path):
    with pytest.raises(LlmassayError, match=r"^-P accuracy\.chat_template: maybe; choose from auto, on, off$"):
        run(tmp_path, NoLogprobs(), probe_options={"accuracy.chat_template": "maybe"})


def test_a_cut_prompt_is_flagged_in_its_sample_and_counted_in_the_results(tmp_path):
    """A backend with a short window cuts long prompts from the left and says by how much."""
    from dataclasses import replace

    class ShortWindow(NoLogprobs):
        def generate(self, reqs):
            out = super().generate(reqs)
            return [replace(g, n_truncated_tokens=7) if len(prompt_of(r)) > 400 else g for r, g in zip(reqs, out)]

    backend = ShortWindow()
    out = run(tmp_path, backend, metrics=["acc_gen"])
    rows = out.probe_results[0].samples
    long = {s.id for s in MMLU if len(s.prompt) > 400}
    assert long and {r["id"] for r in rows if r.get("n_truncated_tokens") == 7} == long
    assert out.results["engine"]["truncated"] == len(long)
    assert f"{len(long)} requests did not fit the context window" in out.results["notes"]["engine"][0]


# -- the answer format a chat turn asks for (issue #32, item 11) -----------------------------
class Explainer(ScriptedBackend):
    """A chat model that answers in the asked form when told it, and otherwise explains
    and is cut off: its first words then hold a wrong number (SmolLM2's "To calculate
    -5 / 5, we need to perform") or no option at all. Its true accuracy is 1.0."""

    def __init__(self, truth: dict[str, str], told: str) -> None:
        def answer(req: GenerateRequest) -> str:
            text = prompt_of(req)
            right = next((v for k, v in truth.items() if k in text), "")
            return right if text.startswith(told + "\n\n") else "To work this out, we count 3 of them"

        super().__init__(lambda c, x: -1.0, answer, identity=f"explainer:{told}")

    def chat_model(self) -> bool:
        return True


def test_a_chat_turn_asks_for_the_number_the_exact_match_reads(tmp_path):
    from llmassay.probes._answer_format import NUMBER_ONLY

    letters = load_task("letters_sample").samples[:10]  # zero-shot: auto sends a chat turn
    truth = {s.prompt: str(s.target) for s in letters}
    outs = {}
    for fmt in ("instruct", "bare"):
        backend = Explainer(truth, NUMBER_ONLY)
        outs[fmt] = evaluate(RunConfig(model="test/x", tasks=["letters_sample"], limit=10, use_cache=False,
                                       output_path=str(tmp_path / fmt), probe_options={"accuracy.chat_format": fmt}),
                             backend=backend)
        assert all(r.messages is not None for r in backend.asked)
    acc = {f: o.results["results"]["letters_sample"]["accuracy"]["exact_match"]["value"] for f, o in outs.items()}
    assert acc == {"instruct": 1.0, "bare": 0.0}
    details = {f: o.results["details"]["letters_sample"]["accuracy"] for f, o in outs.items()}
    assert details["instruct"] == {"chat_template": True, "chat_format": "instruct", "answer_instructions": [NUMBER_ONLY]}
    assert details["bare"] == {"chat_template": True, "chat_format": "bare", "answer_instructions": []}
    assert all(r["instruction"] == NUMBER_ONLY for r in outs["instruct"].probe_results[0].samples)
    assert all("instruction" not in r for r in outs["bare"].probe_results[0].samples)


def test_a_chat_turn_asks_for_the_letter_parse_choice_reads(tmp_path):
    from llmassay.probes._answer_format import LETTER_ONLY

    results = {}
    for fmt in ("instruct", "bare"):
        backend = Explainer(KEY, LETTER_ONLY)
        out = run(tmp_path / fmt, backend, metrics=["acc_gen"], probe_options={"accuracy.chat_format": fmt})
        results[fmt] = out.results["results"]["mmlu_sample"]["accuracy"]
        sent = [r for r in backend.asked if isinstance(r, GenerateRequest)]
        assert all(r.messages is not None for r in sent)
        if fmt == "instruct":  # the line, a blank line, then the task's prompt unchanged
            assert {r.messages[0][1] for r in sent} == {LETTER_ONLY + "\n\n" + s.prompt for s in MMLU}
            assert out.results["details"]["mmlu_sample"]["accuracy"]["answer_instructions"] == [LETTER_ONLY]
    assert (results["instruct"]["acc_gen"]["value"], results["instruct"]["gen_parsed"]["value"]) == (1.0, 1.0)
    assert results["bare"]["acc_gen"]["value"] == 0.0


def test_raw_prompts_get_no_instruction(tmp_path):
    backend = NoLogprobs(chat=False)
    out = run(tmp_path, backend, metrics=["acc_gen"])
    assert all(prompt_of(r) in KEY for r in backend.asked)
    assert out.results["details"]["mmlu_sample"]["accuracy"] == {"chat_template": False}


def test_the_instruction_matches_what_the_parser_reads():
    from llmassay.probes._answer_format import (ANSWER_ONLY, LETTER_ONLY, NUMBER_ONLY, OPTION_NUMBER_ONLY,
                                                choice_instruction, generation_instruction)

    lettered = "Capital of France?\nA. London\nB. Paris\nAnswer:"
    assert choice_instruction(["A", "B"], lettered) == LETTER_ONLY
    assert choice_instruction(["London", "Paris"], lettered) == LETTER_ONLY  # the prompt labels the texts
    assert choice_instruction(["1", "2"], "Capital of France?\n1. London\n2. Paris\nAnswer:") == OPTION_NUMBER_ONLY
    assert choice_instruction(["London", "Paris"], "Question: Capital of France?\nAnswer:") == ANSWER_ONLY
    assert choice_instruction(["6", "8"], "Question: legs of a spider?\nAnswer:") == ANSWER_ONLY  # numbers, not labels
    arith, letters = load_task("arith_sample"), load_task("letters_sample")
    assert generation_instruction(arith, ["-1"]) == NUMBER_ONLY
    assert generation_instruction(letters, ["two"]) == ANSWER_ONLY


def test_acc_gen_reads_an_answer_given_as_the_options_text(tmp_path):
    """Label choices, the model names the option's text from the prompt (issue #32, item 12c)."""
    texts = {s.prompt: s.doc["choices"][int(s.target)] for s in MMLU}
    backend = NoLogprobs()
    backend._answer = lambda req: next(v for k, v in texts.items() if k in prompt_of(req))
    m = run(tmp_path, backend, metrics=["acc_gen"]).results["results"]["mmlu_sample"]["accuracy"]
    assert (m["acc_gen"]["value"], m["gen_parsed"]["value"]) == (1.0, 1.0)
