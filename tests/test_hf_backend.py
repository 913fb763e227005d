"""The transformers backend on the embedded GGUF (de-quantised to fp32), loaded once.

References are computed here by hand (one sequence, model(...).logits → log_softmax →
gather), so a batching, padding, grouping or tokenisation slip in the backend shows up.
"""

from __future__ import annotations

import pytest

from llmassay.types import GenerateRequest, LoglikelihoodRequest

pytestmark = [pytest.mark.slow, pytest.mark.hf]

GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
MMLU = (
    "The following are multiple choice questions (with answers) about astronomy.\n\n"
    "Which planet is known as the Red Planet?\nA. Venus\nB. Mars\nC. Jupiter\nD. Saturn\nAnswer:"
)
EASY = [
    ("The capital of France is", [" Paris", " Berlin", " banana"]),
    ("Two plus two equals", [" four", " seven", " blue"]),
    ("The sun rises in the", [" east", " west", " fridge"]),
    ("Water freezes at zero degrees", [" Celsius", " Kelvin", " sandwich"]),
    ("Monday, Tuesday,", [" Wednesday", " Friday", " January"]),
]


@pytest.fixture(scope="module")
def hf(smollm2_path):
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from llmassay.backends.hf import HFBackend

    return HFBackend(str(smollm2_path.parent), gguf_file=GGUF, batch_size=8)


def with_and_without_prefix_reuse(hf, method, reqs):
    """((answers, tokens evaluated, cached prefix), (answers, tokens evaluated)): `method`
    run once from a fresh prefix cache, then with prefix reuse off."""
    saved = hf._reuses_prefix
    try:
        hf._kv_prefix, hf.tokens_evaluated = None, 0
        reused = method(reqs)
        reused_tokens, prefix = hf.tokens_evaluated, hf._kv_prefix[0]
        hf._reuses_prefix, hf.tokens_evaluated = False, 0
        plain = method(reqs)
        return (reused, reused_tokens, prefix), (plain, hf.tokens_evaluated)
    finally:
        hf._reuses_prefix, hf._kv_prefix = saved, None


def manual(hf, context: str, continuation: str, max_length: int | None = None):
    """(logprob, is_greedy, n_cont) from one unbatched forward pass, lm-eval's recipe."""
    import torch

    n_spaces = len(context) - len(context.rstrip())
    if n_spaces:
        context, continuation = context[:-n_spaces], context[-n_spaces:] + continuation
    ctx = hf.tokenizer.encode(context)
    whole = hf.tokenizer.encode(context + continuation)
    cont = whole[len(ctx) :]
    inp = whole[:-1][-(max_length or len(whole)) :]
    with torch.no_grad():
        logp = torch.log_softmax(hf.model(torch.tensor([inp])).logits[0], dim=-1)
    rows = logp[len(inp) - len(cont) :]
    picked = rows.gather(1, torch.tensor(cont).unsqueeze(-1)).squeeze(-1)
    return float(picked.sum()), bool((rows.argmax(-1) == torch.tensor(cont)).all()), len(cont)


def test_loglikelihood_equals_a_direct_torch_computation(hf):
    greedy = hf.generate([GenerateRequest(prompt="The capital of France is", max_tokens=3)])[0].text
    reqs = [LoglikelihoodRequest(MMLU, c) for c in (" A", " B", " C", " D", " B. Mars")]
    reqs += [
        LoglikelihoodRequest(MMLU + " ", "B"),  # trailing space moves to the continuation
        LoglikelihoodRequest("The capital of France is", greedy),
        LoglikelihoodRequest("The capital of France is", " zebra, obviously"),
        LoglikelihoodRequest("Hi", " there"),
    ]
    # Alone, each request is one unpadded forward pass, as in the reference.
    alone = [hf.loglikelihood([req])[0] for req in reqs]
    for req, res in zip(reqs, alone):
        logprob, is_greedy, n_cont = manual(hf, req.context, req.continuation)
        assert res.logprob == pytest.approx(logprob, abs=5e-5), req  # float32 rounding of the output layer
        assert res.is_greedy == is_greedy, req
        assert res.n_tokens == n_cont and len(res.token_logprobs) == n_cont
        assert res.logprob == pytest.approx(sum(res.token_logprobs), abs=1e-5)
    assert alone[5].logprob == alone[1].logprob  # the same tokens either way
    assert alone[6].is_greedy and not alone[7].is_greedy  # greedy output is greedy by definition
    assert sum(r.is_greedy for r in alone[:4]) <= 1
    # Together: 9 requests, 5 distinct inputs (the MMLU choices share one pass), right-padded
    # into one batch. Padding changes float32 rounding only; in any order or batch size.
    together = hf.loglikelihood(reqs)
    hf.batch_size = 2
    try:
        backward = hf.loglikelihood(list(reversed(reqs)))[::-1]
    finally:
        hf.batch_size = 8
    for a, b, c in zip(alone, together, backward):
        assert b.logprob == pytest.approx(a.logprob, abs=1e-4) and b.is_greedy == a.is_greedy
        assert c.logprob == pytest.approx(a.logprob, abs=1e-4) and c.is_greedy == a.is_greedy
    # The longest input is never padded: only the output layer's row count differs, which
    # moves float32 rounding by a few 1e-6 at most.
    assert together[0].logprob == pytest.approx(alone[0].logprob, abs=2e-5)


def test_a_shared_prefix_is_read_once_across_batches_and_scores_stay_the_same(hf):
    # A fixed few-shot block in front of every question (lm-eval's flan_cot_fewshot, BBH):
    # 12 questions → 2 batches of 8 inputs; the block's KV cache serves both.
    shots = "".join(f"Question: What is {a} plus {b}?\nAnswer: {a + b}\n\n" for a, b in
                    [(2, 3), (4, 4), (7, 1), (6, 3), (5, 5), (9, 2), (8, 8), (3, 6)])
    questions = [f"Question: What is {a} plus {b}?\nAnswer:" for a, b in
                 [(1, 1), (2, 2), (3, 1), (4, 2), (5, 3), (6, 1), (7, 2), (2, 9), (3, 3), (8, 1), (4, 5), (6, 6)]]
    reqs = [LoglikelihoodRequest(shots + q, c) for q in questions for c in (" 2", " 7", " 12", " nine")]
    (reused, reused_tokens, prefix), (plain, plain_tokens) = with_and_without_prefix_reuse(hf, hf.loglikelihood, reqs)
    assert len(prefix) >= len(hf.tokenize(shots)) - 1  # the whole block (its last token may merge)
    inputs = {tuple(ctx + cont[:-1]) for ctx, cont in map(hf._encode_pair, reqs)}
    assert plain_tokens == sum(len(x) for x in inputs)
    assert reused_tokens == len(prefix) + sum(len(x) - len(prefix) for x in inputs)  # the block once
    assert reused_tokens < plain_tokens / 3
    for a, b in zip(reused, plain):
        assert a.logprob == pytest.approx(b.logprob, abs=5e-5) and a.is_greedy == b.is_greedy
        assert a.n_context_tokens == b.n_context_tokens and a.n_tokens == b.n_tokens


def test_batches_are_cut_where_they_waste_least_padding():
    from llmassay.backends.hf import padding_aware_batches

    seqs = [[0] * n for n in (100, 100, 50, 50, 50, 50)]
    runs = padding_aware_batches(seqs, max_batch=4, overhead=32)
    assert [[len(s) for s in run] for run in runs] == [[100, 100], [50, 50, 50, 50]]  # 464 vs 564 for fixed 4s
    lengths = [219, 157, 142, 125, 121, 116, 112, 112, 108, 107, 96, 95, 95, 94, 94, 93, 89, 88, 83, 82]
    runs = padding_aware_batches([[0] * n for n in lengths], max_batch=8)
    assert [len(s) for run in runs for s in run] == lengths  # every input once, order kept
    assert all(1 <= len(run) <= 8 for run in runs)
    padded = sum(len(run) * len(run[0]) for run in runs)
    fixed = sum(len(lengths[i : i + 8]) * lengths[i] for i in range(0, len(lengths), 8))
    assert padded + 32 * len(runs) <= fixed + 32 * 3 and padded < fixed


def test_too_long_inputs_are_cut_from_the_left_like_lm_eval(hf):
    saved = hf.max_length
    hf.max_length = 12
    try:
        res = hf.loglikelihood([LoglikelihoodRequest(MMLU, " B. Mars")])[0]
    finally:
        hf.max_length = saved
    logprob, _, _ = manual(hf, MMLU, " B. Mars", max_length=12)
    assert res.logprob == pytest.approx(logprob, abs=5e-5)  # float32 rounding of the output layer
    assert res.n_context_tokens == 12 + 1 - res.n_tokens


def test_empty_context_is_conditioned_on_bos(hf):
    import torch

    res = hf.loglikelihood([LoglikelihoodRequest("", "Hello world")])[0]
    cont = hf.tokenizer.encode("Hello world", add_special_tokens=False)
    inp = [hf.tokenizer.bos_token_id] + cont[:-1]
    with torch.no_grad():
        logp = torch.log_softmax(hf.model(torch.tensor([inp])).logits[0], dim=-1)
    assert res.logprob == pytest.approx(sum(logp[i, t].item() for i, t in enumerate(cont)), abs=5e-5)


def test_tokenisation_is_identical_to_llama_cpp(hf, smollm2):
    texts = [
        "Hello world",
        MMLU,
        MMLU + " B",
        " leading space",
        "trailing space ",
        "Tabs\tand\n\nnewlines\r\n",
        "émoji 🙂 and ünïcödé — dashes",
        "x" * 40,
        "numbers 1234567 and 3.14159",
    ]
    for text in texts:
        assert hf.tokenize(text) == smollm2.tokenize(text), text
    # One known difference: special-token text. transformers (and so lm-eval's hf model)
    # reads "<|im_start|>" as the special token; llamacpp/ encodes it as plain text.
    assert hf.tokenize("<|im_start|>user")[0] == hf.tokenizer.convert_tokens_to_ids("<|im_start|>")
    assert len(smollm2.tokenize("<|im_start|>user")) > 2


def test_greedy_generation_stops_at_the_stop_string_and_drops_it(hf):
    prompt = "1, 2, 3, 4, 5,"
    free = hf.generate([GenerateRequest(prompt=prompt, max_tokens=16)])[0]
    assert free.n_tokens > 2 and free.n_prompt_tokens == len(hf.tokenize(prompt))
    words = free.text.split()
    stop = words[1] if len(words) > 1 else free.text.strip()[-1]
    stopped, again = hf.generate([GenerateRequest(prompt=prompt, max_tokens=16, stop=(stop,))] * 2)
    assert stopped.text == free.text[: free.text.find(stop)]  # greedy: the same text, cut
    assert stop not in stopped.text and stopped.finish_reason == "stop"
    assert stopped.n_tokens < free.n_tokens
    assert again.text == stopped.text


def test_streamed_generation_is_the_same_text_token_by_token_for_timing(hf):
    from llmassay.efficiency.timing import STREAM, timed_generate

    req = GenerateRequest(prompt="The capital of France is", max_tokens=8)
    plain = hf.generate([req])[0]
    gen, timing = timed_generate(hf, req)
    assert timing.method == STREAM and gen.text == plain.text and timing.n_out == plain.n_tokens
    assert len(timing.itl_s) == plain.n_tokens - 1 and 0 < timing.ttft_s < timing.e2e_s  # the prompt is not a piece


ARITH_SHOTS = "Question: 12 + 7 =\nAnswer: 19\n\nQuestion: 30 - 4 =\nAnswer: 26\n\n"


def test_greedy_requests_generate_in_one_batch_with_the_same_text_as_one_by_one(hf, monkeypatch):
    """Left padding under an attention mask must not change a greedy row, and rows that
    stop early must not count the padding that follows them as output."""
    prompts = [ARITH_SHOTS + f"Question: {q}\nAnswer:" for q in ("5 + 5 =", "123 + 456 =", "9 * 9 =", "100 - 1 =")]
    prompts += ["Once upon a time", "The three primary colours are"]
    reqs = [GenerateRequest(prompt=p, max_tokens=12, stop=("\n",)) for p in prompts]
    calls: list[int] = []
    inner = hf.model.generate
    monkeypatch.setattr(hf.model, "generate", lambda ids, **kw: calls.append(ids.shape[0]) or inner(ids, **kw))
    batched = hf.generate(reqs)
    assert calls == [len(reqs)]  # one left-padded batch
    alone = [hf.generate([r])[0] for r in reqs]
    assert calls[1:] == [1] * len(reqs)
    for a, b in zip(batched, alone):
        assert (a.text, a.n_tokens, a.n_prompt_tokens, a.finish_reason) == (b.text, b.n_tokens, b.n_prompt_tokens, b.finish_reason)
    assert all(g.text.strip() and "\n" not in g.text for g in batched)
    assert {g.finish_reason for g in batched} == {"stop", "length"}  # rows ended at different steps
    assert min(g.n_tokens for g in batched) < max(g.n_tokens for g in batched)


def test_generation_reads_a_shared_few_shot_block_once_with_the_same_text(hf):
    questions = ("5 + 5 =", "123 + 456 =", "9 * 9 =", "100 - 1 =", "7 - 12 =", "40 + 2 =")
    reqs = [GenerateRequest(prompt=ARITH_SHOTS + f"Question: {q}\nAnswer:", max_tokens=10, stop=("\n",)) for q in questions]
    prompts = [hf.tokenize(r.prompt) for r in reqs]
    (cached, cached_tokens, prefix), (plain, plain_tokens) = with_and_without_prefix_reuse(hf, hf.generate, reqs)
    assert len(prefix) >= len(hf.tokenize(ARITH_SHOTS)) - 1  # the block (its last token may merge)
    new = sum(g.n_tokens for g in plain)
    assert plain_tokens == sum(map(len, prompts)) + new
    assert cached_tokens == len(prefix) + sum(len(p) - len(prefix) for p in prompts) + new
    for a, b in zip(cached, plain):
        assert (a.text, a.n_tokens, a.n_prompt_tokens, a.finish_reason) == (b.text, b.n_tokens, b.n_prompt_tokens, b.finish_reason)


def test_sampled_requests_do_not_depend_on_their_neighbours(hf):
    sampled = GenerateRequest(prompt="My favourite animal is", max_tokens=8, temperature=1.0, seed=3)
    alone = hf.generate([sampled])[0]
    among = hf.generate([GenerateRequest(prompt="Hello", max_tokens=8, temperature=1.0, seed=9), sampled,
                         GenerateRequest(prompt="Hi there", max_tokens=8)])[1]
    assert among.text == alone.text and among.n_tokens == alone.n_tokens


def test_generation_batches_group_requests_that_can_share_a_call():
    from llmassay.backends._hf_batching import generation_batches

    schema = GenerateRequest.schema_string({"type": "integer"})
    reqs = [
        GenerateRequest(prompt="a", max_tokens=8),  # 0
        GenerateRequest(prompt="b", max_tokens=8),  # 1: with 0
        GenerateRequest(prompt="c", max_tokens=16),  # 2: other length limit
        GenerateRequest(prompt="d", max_tokens=8, temperature=0.7),  # 3: sampled, alone
        GenerateRequest(prompt="e", max_tokens=8, temperature=0.7),  # 4: sampled, alone
        GenerateRequest(prompt="f", max_tokens=8, json_schema=schema),  # 5: constrained
        GenerateRequest(prompt="g", max_tokens=8, json_schema=schema),  # 6: with 5
        GenerateRequest(prompt="h", max_tokens=8, json_schema=schema, stop=("}",)),  # 7: alone
        GenerateRequest(prompt="i", max_tokens=8),  # 8: with 0 and 1, the longest first
    ]
    lengths = [5, 6, 5, 5, 5, 5, 5, 5, 9]
    batches = generation_batches(reqs, lengths, max_batch=8)
    assert sorted(batches) == sorted([[8, 1, 0], [2], [3], [4], [5, 6], [7]])
    assert sorted(i for b in generation_batches(reqs * 2, lengths * 2, max_batch=2) for i in b) == list(range(18))
    assert max(len(b) for b in generation_batches(reqs * 2, lengths * 2, max_batch=2)) == 2


def test_chat_messages_use_the_chat_template(hf):
    chat = hf.generate([GenerateRequest(messages=(("user", "What is the capital of France?"),), max_tokens=12)])[0]
    assert chat.text.strip()
    rendered = hf.tokenizer.apply_chat_template(
        [{"role": "user", "content": "What is the capital of France?"}], add_generation_prompt=True, tokenize=False
    )
    assert chat.n_prompt_tokens == len(hf.tokenize(rendered))
    assert hf.tokenize(rendered)[0] == hf.tokenizer.convert_tokens_to_ids("<|im_start|>")
    assert hf.tokenize(rendered)[1] != hf.tokenize(rendered)[0]  # no doubled BOS


def test_same_picks_as_llama_cpp_on_easy_questions(hf, smollm2):
    """Different engines (fp32 transformers vs Q4_1 kernels): agreement, not equality."""
    reqs = [LoglikelihoodRequest(q, c) for q, cs in EASY for c in cs]
    a, b = hf.loglikelihood(reqs), smollm2.loglikelihood(reqs)
    same = 0
    for i, (_, choices) in enumerate(EASY):
        k = len(choices)
        pick_a = max(range(k), key=lambda j: a[k * i + j].logprob)
        pick_b = max(range(k), key=lambda j: b[k * i + j].logprob)
        same += pick_a == pick_b
    assert same >= 3, f"hf and llamacpp agree on only {same}/{len(EASY)} easy questions"


def test_second_load_reuses_the_dequantised_weights(hf, smollm2_path):
    import time

    from llmassay.backends.hf import HFBackend
    from llmassay.models import llmassay_home

    cached = list((llmassay_home() / "hf-dequantised").glob("*-float32/model.safetensors"))
    assert len(cached) == 1  # written by the first (GGUF) load
    start = time.perf_counter()
    again = HFBackend(str(smollm2_path.parent), gguf_file=GGUF, batch_size=8)
    assert time.perf_counter() - start < 10  # vs 20-40 s de-quantising the GGUF
    reqs = [LoglikelihoodRequest("Question: What is 2+2?\nAnswer:", c) for c in (" 4", " 5")]
    assert again.loglikelihood(reqs) == hf.loglikelihood(reqs)
    assert again.tokenize("Hello <|im_start|> world") == hf.tokenize("Hello <|im_start|> world")
    assert again.fingerprint() == hf.fingerprint()


def test_token_statistics_cover_the_scored_tokens(hf, smollm2):
    from llmassay.backends.token_stats import TokenStatsRequest

    texts = [" It was a bright cold day in April, and the clocks were striking thirteen."]
    scored = hf.loglikelihood([LoglikelihoodRequest("", t) for t in texts])[0]
    stats = hf.token_stats([TokenStatsRequest("", t) for t in texts])[0]
    assert stats.n_tokens == scored.n_tokens and stats.n_context_tokens == 1
    assert stats.token_logprobs == pytest.approx(scored.token_logprobs, abs=5e-4)  # float64 vs float32 log-softmax
    assert all(v >= 0 for v in stats.logprob_variances)
    # the same token sequence as llama.cpp, and nearly the same distributions (Q4_1 vs fp32)
    ref = smollm2.token_stats([TokenStatsRequest("", t) for t in texts])[0]
    assert ref.n_tokens == stats.n_tokens
    assert stats.expected_logprobs == pytest.approx(ref.expected_logprobs, abs=0.3)
    near_mode = [(a, b) for a, b in zip(stats.ranks, ref.ranks) if b <= 10]
    assert len(near_mode) >= stats.n_tokens // 2 and all(a == b for a, b in near_mode)  # far ranks move with Q4_1


def test_rolling_windows_score_as_lm_eval_s_hf_model_does(hf):
    """#24: a document in one window scores as log P(text | prefix token); in 8-token windows
    every token is still predicted once (same count), with less context."""
    from llmassay.engine.engine import Engine
    from llmassay.engine.rolling import loglikelihood_rolling

    text = "The boatmen talked of the weather, and the children watched the river go by the old bridge."
    [whole] = loglikelihood_rolling(Engine(hf), [text])
    [plain] = hf.loglikelihood([LoglikelihoodRequest("", text)])
    assert whole.n_windows == 1 and whole.n_tokens == plain.n_tokens
    assert whole.logprob == pytest.approx(plain.logprob, abs=1e-4)
    saved = hf.max_length
    try:
        hf.max_length = 8
        [short] = loglikelihood_rolling(Engine(hf), [text])
    finally:
        hf.max_length = saved
    assert short.n_windows == -(-whole.n_tokens // 8) and short.logprob < whole.logprob - 5
