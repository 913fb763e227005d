"""The accuracy probe on scripted backends: only what the metrics need is asked, and free
generation goes through the chat template exactly when `chat_template` says so."""

from __future__ import annotations

import pytest

from fakes import ScriptedBackend, answer_key_backend, prompt_of
from llmassay.evaluate import RunConfig, evaluate
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
    if via_chat:  # the whole prompt is the user's turn, as lm-eval's --apply_chat_template
        assert sent[0].messages == (("user", prompt_of(sent[0])),) and prompt_of(sent[0]) in KEY
    assert out.results["details"]["mmlu_sample"]["accuracy"]["chat_template"] is via_chat
    assert out.results["probes"]["accuracy"]["options"] == {"chat_template": setting}
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
