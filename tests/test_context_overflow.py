"""Inputs longer than the context window: one rule on the local backends. A log-likelihood
context and a generation prompt lose tokens from the left (lm-eval's rule) and the result
counts them (`n_truncated_tokens`); a continuation or max_tokens that alone exceeds the
window is a one-line error. Never a traceback, never a silent cut."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from llmassay.tasks.loader import load_task
from llmassay.types import GenerateRequest, LlmassayError, LoglikelihoodRequest

N_CTX = 64


@pytest.fixture(scope="module")
def small_window(smollm2_path):
    from llmassay.backends.llamacpp import LlamaCppBackend

    backend = LlamaCppBackend(str(smollm2_path), n_ctx=N_CTX)
    yield backend
    backend.llm.close()


def _scratch_score(llm, tokens: list[int], n_context: int) -> float:
    """Reference: log P(tokens[n_context:] | tokens[:n_context]) from one logits_all pass."""
    llm.reset()
    llm.eval(tokens[:-1])  # the last token is only predicted
    rows = llm.scores[n_context - 1 : len(tokens) - 1].astype(np.float64)
    top = rows.max(axis=1, keepdims=True)
    logp = rows - (top + np.log(np.exp(rows - top).sum(axis=1, keepdims=True)))
    return float(sum(logp[i, t] for i, t in enumerate(tokens[n_context:])))


@pytest.mark.slow
def test_long_mmlu_contexts_are_cut_from_the_left_and_counted(small_window, smollm2_path):
    import llama_cpp

    task = load_task("mmlu_sample")
    sample = next(s for s in task.samples if len(small_window.tokenize(s.prompt)) > 2 * N_CTX)
    reqs = [LoglikelihoodRequest(sample.prompt, task.target_delimiter + c) for c in sample.choices or []]
    results = small_window.loglikelihood(reqs)
    ref = llama_cpp.Llama(model_path=str(smollm2_path), n_ctx=N_CTX, logits_all=True, verbose=False)
    for req, res in zip(reqs, results):
        full = small_window.encode_request(req)
        assert len(full.context) + res.n_truncated_tokens == len(small_window.tokenize(sample.prompt))
        assert res.n_truncated_tokens > N_CTX  # planted: the prompt is over twice the window
        assert res.n_context_tokens + res.n_tokens - 1 == N_CTX  # what is left fills the window
        # the score is that of the kept tail, scored from scratch in a window of the same size
        tokens = [*full.context, *full.continuation]
        assert res.logprob == pytest.approx(_scratch_score(ref, tokens, len(full.context)), abs=1e-3)
    ref.close()


@pytest.mark.slow
def test_fitting_requests_are_not_flagged(small_window):
    res = small_window.loglikelihood([LoglikelihoodRequest("The capital of France is", " Paris")])[0]
    assert res.n_truncated_tokens == 0
    gen = small_window.generate([GenerateRequest(prompt="The capital of France is", max_tokens=4)])[0]
    assert gen.n_truncated_tokens == 0 and gen.n_prompt_tokens == len(small_window.tokenize("The capital of France is"))


@pytest.mark.slow
def test_long_generation_prompts_keep_their_tail_and_say_so(small_window):
    prompt = " ".join(f"item {i}," for i in range(60)) + " The capital of France is"
    n_prompt = len(small_window.tokenize(prompt))
    max_tokens = 8
    gen = small_window.generate([GenerateRequest(prompt=prompt, max_tokens=max_tokens)])[0]
    budget = N_CTX - max_tokens - 1
    assert (gen.n_prompt_tokens, gen.n_truncated_tokens) == (budget, n_prompt - budget)
    assert gen.n_tokens == max_tokens or gen.finish_reason == "stop"  # max_tokens was not shortened
    chat = GenerateRequest(messages=(("user", prompt),), max_tokens=max_tokens)
    out = small_window.generate([chat])[0]
    assert out.n_prompt_tokens == budget and out.n_truncated_tokens > n_prompt - budget  # + template tokens


@pytest.mark.slow
def test_what_cannot_fit_at_all_is_a_one_line_error(small_window):
    with pytest.raises(LlmassayError, match=f"max_tokens 100 leaves no room for a prompt in n_ctx {N_CTX}"):
        small_window.generate([GenerateRequest(prompt="Hello", max_tokens=100)])
    long_answer = " and".join(["x"] * 80)
    with pytest.raises(LlmassayError, match=f"more than the context window of {N_CTX}") as err:
        small_window.loglikelihood([LoglikelihoodRequest("Q:", long_answer)])
    assert "\n" not in str(err.value)


@pytest.mark.slow
def test_cli_run_with_a_tiny_window_finishes_and_records_the_cut(tmp_path):
    """The issue's command: it used to end with a traceback on the generation path."""
    out = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    cmd = [sys.executable, "-m", "llmassay.cli", "run", "--model", "llamacpp/smollm2-135m", "--model-args",
           f"n_ctx={N_CTX}", "--tasks", "mmlu_sample", "--limit", "3", "--output-path", str(out), "--no-cache"]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-800:]
    assert "Traceback" not in proc.stderr
    rows = [json.loads(line) for f in out.rglob("samples_*.jsonl") for line in f.read_text().splitlines()]
    assert len(rows) == 3
