"""llama.cpp through llama-cpp-python: the embedded default backend.

Loglikelihoods are exact per-token log-softmax values. A context shared by several
continuations (the choices of one question, or a few-shot prefix shared by all
questions) is evaluated once: the KV cache is truncated back to the shared prefix and
only the new tokens are decoded. llama.cpp's CPU kernels are not split-invariant, so a
score then depends (by float rounding, README) on which requests came before it;
`prefix_reuse=false` scores every request in one pass from an empty KV cache instead.

Too-long inputs follow one rule: a log-likelihood context loses tokens from the left (as
lm-eval), a generation prompt too (keeping room for max_tokens); either cut is counted in
the result's `n_truncated_tokens`. A continuation or max_tokens that alone exceeds the
window is a one-line error.

Constrained decoding compiles JSON schemas with `_gbnf` and test-parses every grammar
before decoding: llama.cpp hands a grammar it cannot parse to the sampler as a null
pointer, which kills the process.
"""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
import time
from collections.abc import Callable, Sequence
from itertools import groupby
from typing import Any, TypeVar

import numpy as np

from llmassay.backends import llama_internals as internals
from llmassay.backends._gbnf import schema_to_gbnf
from llmassay.backends._gguf_check import check_gguf
from llmassay.backends._scoring import EncodedPair, encode_pair, score_continuation
from llmassay.backends.llama_load import gpu_args, open_llama
from llmassay.backends.token_stats import StatsAccumulator, TokenStats, TokenStatsRequest
from llmassay.hashing import file_sha256
from llmassay.models import resolve_model_path
from llmassay.types import (
    GenerateRequest,
    Generation,
    LlmassayError,
    LoglikelihoodRequest,
    LoglikelihoodResult,
)


AnswerFn = Callable[[int, Any], None]  # (index in the batch, its answer), as each is computed
T = TypeVar("T")


def _heard(on_answer: AnswerFn | None, i: int, answer: T) -> T:
    if on_answer is not None:
        on_answer(i, answer)
    return answer


class LlamaCppBackend:
    """`llamacpp/<alias or path.gguf>`; model args: n_ctx, n_threads (default: the cores
    not already busy), n_batch, prefix_reuse (true: share KV-cached prefixes across
    requests; false: every request starts from an empty cache, so its score does not depend
    on how requests were grouped), use_extra_bufts (weight repacking; default off only where
    llama.cpp was built with AMX on an AMX CPU, which crashes: see `llama_load`),
    n_gpu_layers (0: CPU only; -1: all layers on the GPU) and main_gpu (0), recorded in the
    fingerprint when a GPU is used; lora (a PEFT LoRA adapter folder, or a `llmassay tune`
    output folder: converted to llama.cpp's GGUF LoRA on first use, `tune.gguf_lora`; its hash
    joins the fingerprint) and lora_scale (1.0); swa_full (llama.cpp's default, true: a model
    with sliding-window layers such as Gemma 3 gets a full-size cache for them, whose attention
    still spans every cell; false: a window-sized ring, less memory and a prefill that stops
    growing quadratically — `llmassay attention-cost` measures both. A ring has dropped the
    cells a shared prefix would need, so false also turns prefix_reuse off; both are recorded
    in the fingerprint)."""

    def __init__(
        self,
        model: str,
        n_ctx: int = 2048,
        n_threads: int | None = None,
        n_batch: int = 512,
        seed: int = 0,
        prefix_reuse: bool = True,
        use_extra_bufts: bool | None = None,
        n_gpu_layers: int = 0,
        main_gpu: int = 0,
        lora: str | None = None,
        lora_scale: float = 1.0,
        swa_full: bool | None = None,
        **unknown: Any,
    ) -> None:
        if unknown:
            raise LlmassayError(f"llamacpp: unknown model args: {', '.join(sorted(unknown))}")
        llama_cpp = internals.lib()  # one line naming the extra when it is not installed

        gpu = gpu_args(n_gpu_layers, main_gpu)  # before the model file is read: fail fast
        self.model_path = resolve_model_path(model)
        check_gguf(self.model_path, model)  # llama.cpp would say only "failed to load"
        self.name = f"llamacpp/{model}"
        if not isinstance(prefix_reuse, bool):
            raise LlmassayError(f"llamacpp: prefix_reuse must be true or false, not {prefix_reuse!r}")
        if use_extra_bufts is not None and not isinstance(use_extra_bufts, bool):
            raise LlmassayError(f"llamacpp: use_extra_bufts must be true or false, not {use_extra_bufts!r}")
        if swa_full is not None and not isinstance(swa_full, bool):
            raise LlmassayError(f"llamacpp: swa_full must be true or false, not {swa_full!r}")
        if swa_full is False:  # the ring has pruned what a reused prefix would attend to
            prefix_reuse = False
        self.prefix_reuse = prefix_reuse
        self._load_params: dict[str, Any] = {"n_ctx": int(n_ctx), "n_batch": int(n_batch)}
        if swa_full is False:  # the default (None, llama.cpp's true) leaves the fingerprint as it was
            self._load_params["swa_full"] = False
        if not prefix_reuse:  # other numbers: results must not share cache rows
            self._load_params["prefix_reuse"] = False
        if gpu["n_gpu_layers"] != 0:  # GPU kernels give other numbers: never share a CPU run's cache
            self._load_params.update(gpu)
        lora_args = self._lora_args(lora, lora_scale)
        self._llama_cpp = llama_cpp
        self.llm = open_llama(
            str(self.model_path),
            n_threads=n_threads,  # also n_threads_batch: prefill and scoring run as batches
            use_extra_bufts=use_extra_bufts,
            **gpu,
            n_ctx=int(n_ctx),
            n_batch=int(n_batch),
            logits_all=False,  # logits are requested per position in _decode
            seed=seed,
            verbose=False,
            **lora_args,
            **({} if swa_full is None else {"swa_full": swa_full}),
        )
        internals.check_internals(self.llm)
        self.n_threads = int(self.llm.n_threads)
        self._n_vocab = self.llm.n_vocab()
        self._context_logits: tuple[tuple[int, ...], np.ndarray] | None = None
        self._fingerprint: dict[str, Any] | None = None
        self._grammars: dict[str, Any] = {}  # GBNF text → checked LlamaGrammar
        self.tokens_evaluated = 0

    def _lora_args(self, lora: str | None, lora_scale: Any) -> dict[str, Any]:
        """llama-cpp-python's lora_path/lora_scale for `lora=DIR`; the adapter's hash (the hf
        backend's `adapter_sha256`: the same adapter, the same hash) joins the fingerprint, so
        a tuned model never shares cached answers with its base. No lora: nothing changes."""
        if lora is None:
            if lora_scale != 1.0:
                raise LlmassayError("llamacpp: lora_scale needs lora=DIR")
            return {}
        try:
            if isinstance(lora_scale, bool):
                raise TypeError
            scale = float(lora_scale)
        except (TypeError, ValueError):
            raise LlmassayError(f"llamacpp: lora_scale must be a number, not {lora_scale!r}") from None
        from llmassay.tune.gguf_lora import GGUF_LORA_FORMAT, cached_gguf_lora

        converted = cached_gguf_lora(str(lora), self.model_path)
        self._load_params.update(adapter_sha256=converted.adapter_sha256, lora_gguf=GGUF_LORA_FORMAT)
        if scale != 1.0:
            self._load_params["lora_scale"] = scale
        return {"lora_path": str(converted.path), "lora_scale": scale}

    # -- Protocol -----------------------------------------------------------------------
    def tokenize(self, text: str) -> list[int]:
        return self._encode(text, add_bos=True)

    def fingerprint(self) -> dict[str, Any]:
        if self._fingerprint is None:
            self._fingerprint = {
                "backend": "llamacpp",
                "llama_cpp_python": self._llama_cpp.__version__,
                "model_file": self.model_path.name,
                "model_sha256": file_sha256(self.model_path),
                **self._load_params,
            }
        return self._fingerprint

    def model_size(self) -> dict[str, Any]:
        """Parameters, architecture and file type from the GGUF header (model_size.py)."""
        from llmassay.backends.model_size import gguf_size

        return gguf_size(self.model_path).as_dict()

    def loglikelihood(
        self, reqs: Sequence[LoglikelihoodRequest], on_answer: AnswerFn | None = None
    ) -> list[LoglikelihoodResult]:
        """`on_answer(i, result)` hears each answer as it is computed: the engine caches it
        and moves the progress bar, so a slow model shows progress within a batch."""
        return self._score_pairs([self.encode_request(r) for r in reqs], on_answer)

    def rolling_tokens(self, text: str) -> tuple[list[int], int, int]:
        """A document's tokens (no BOS), the prefix token and the window, for lm-eval's
        rolling windows (engine/rolling.py)."""
        return self._encode(text, add_bos=False), self._prefix_token(), self._load_params["n_ctx"]

    def loglikelihood_tokens(self, reqs: Sequence[Any], on_answer: AnswerFn | None = None) -> list[LoglikelihoodResult]:
        """Token windows (`TokenLoglikelihoodRequest`), scored as `loglikelihood` scores pairs."""
        return self._score_pairs([EncodedPair(tuple(r.context), tuple(r.continuation)) for r in reqs], on_answer)

    def _score_pairs(self, encoded: list[EncodedPair], on_answer: AnswerFn | None) -> list[LoglikelihoodResult]:
        reqs = encoded
        results: list[LoglikelihoodResult | None] = [None] * len(reqs)
        if not self.prefix_reuse:
            for i, pair in enumerate(encoded):
                results[i] = _heard(on_answer, i, self._score_from_scratch(pair))
            return [r for r in results if r is not None]
        # Visit contexts in token order so consecutive ones share the longest prefixes.
        order = sorted(range(len(reqs)), key=lambda i: (encoded[i].context, encoded[i].continuation))
        for context, members in groupby(order, key=lambda i: encoded[i].context):
            context_row = self._load_context(context)
            for i in members:
                results[i] = _heard(on_answer, i, self._score_after_context(encoded[i], context_row))
        return [r for r in results if r is not None]

    def generate(self, reqs: Sequence[GenerateRequest], on_answer: AnswerFn | None = None) -> list[Generation]:
        return [_heard(on_answer, i, self._generate_one(r)) for i, r in enumerate(reqs)]

    def reset(self) -> None:
        """Empty the KV cache: the next request is computed from scratch, exactly as if it
        were the first one this backend saw (a batch-invariance check calls this)."""
        internals.kv_truncate(self.llm, 0)
        self.llm.n_tokens = 0
        self._context_logits = None

    @staticmethod
    def request_order(req: LoglikelihoodRequest | GenerateRequest) -> tuple[str, ...]:
        """The engine's sort key: text order puts requests that share a prefix side by side,
        and this backend re-uses the KV cache of a shared prefix, even across calls."""
        if isinstance(req, LoglikelihoodRequest):
            return (req.context, req.continuation)
        return (req.prompt or "", *(c for _, c in req.messages or ()))

    # -- internals ----------------------------------------------------------------------
    def encode_request(self, req: LoglikelihoodRequest) -> EncodedPair:
        """The (context, continuation) tokens scored for `req` (lm-eval's pairing rules)."""
        return encode_pair(
            req,
            lambda t: self._encode(t, add_bos=True),
            self._prefix_token(),
            self._load_params["n_ctx"],
            encode_plain=lambda t: self._encode(t, add_bos=False),
        )

    def _encode(self, text: str, add_bos: bool) -> list[int]:
        # add_bos only adds a BOS where the GGUF's tokenizer metadata asks for one.
        return self.llm.tokenize(text.encode("utf-8"), add_bos=add_bos, special=False)

    def _prefix_token(self) -> int:
        return int(self.llm.token_bos())

    def _decode(self, tokens: list[int], logits_from: int,
                on_rows: Callable[[np.ndarray], None] | None = None) -> np.ndarray:
        """Append `tokens` to the KV cache (which holds `llm.n_tokens` tokens) and return the
        logits of the appended positions >= `logits_from` (absolute), in order; with
        `on_rows`, each batch's logits go to it (a view of llama.cpp's buffer) and nothing is kept.

        Only those positions are computed through the output layer — for SmolLM2-135M that
        layer is ≈28 M of 135 M parameters, so a prefill that needs one row of logits
        costs markedly less than llama-cpp-python's `logits_all`.
        """
        llm = self.llm
        internals.kv_truncate(llm, llm.n_tokens)
        rows: list[np.ndarray] = []
        for start in range(0, len(tokens), llm.n_batch):
            chunk = tokens[start : start + llm.n_batch]
            n_past = llm.n_tokens
            wanted = internals.decode_chunk(llm, chunk, n_past, logits_from)
            if wanted:
                out = internals.logits(llm, wanted, self._n_vocab)
                if on_rows is not None:
                    on_rows(out)
                else:
                    rows.append(out.copy())
            llm.input_ids[n_past : n_past + len(chunk)] = chunk
            llm.n_tokens += len(chunk)
        self.tokens_evaluated += len(tokens)
        return np.concatenate(rows) if rows else np.empty((0, self._n_vocab), dtype=np.float32)

    def _load_context(self, context: tuple[int, ...]) -> np.ndarray:
        """Make the KV cache hold exactly `context`, re-using what it already holds, and
        return the logits after its last token."""
        llm = self.llm
        if self._context_logits is not None and self._context_logits[0] == context:
            llm.n_tokens = len(context)
            return self._context_logits[1]
        current = llm.input_ids[: llm.n_tokens]
        shared = 0
        for a, b in zip(current, context):
            if a != b:
                break
            shared += 1
        shared = min(shared, len(context) - 1)  # the last token is fed again for its logits
        llm.n_tokens = shared
        row = self._decode(list(context[shared:]), logits_from=len(context) - 1)[-1]
        self._context_logits = (context, row)
        return row

    def _score_after_context(self, pair: EncodedPair, context_row: np.ndarray) -> LoglikelihoodResult:
        n_context = len(pair.context)
        self.llm.n_tokens = n_context
        # The last continuation token is never fed: its logits are not needed.
        feed = list(pair.continuation[:-1])
        rows = context_row[None, :]
        if feed:
            rows = np.concatenate([rows, self._decode(feed, logits_from=n_context)])
        return score_continuation(rows, pair.continuation, n_context, pair.n_truncated)

    def _score_from_scratch(self, pair: EncodedPair) -> LoglikelihoodResult:
        """Context and continuation in one pass over an empty cache, as raw llama.cpp
        scores a pair: the numbers depend on this request alone."""
        self.reset()
        rows = self._decode([*pair.context, *pair.continuation[:-1]], logits_from=len(pair.context) - 1)
        self.reset()  # the cache holds a continuation: no later context may reuse it
        return score_continuation(rows, pair.continuation, len(pair.context), pair.n_truncated)

    def token_stats(self, reqs: Sequence[TokenStatsRequest], on_answer: AnswerFn | None = None) -> list[TokenStats]:
        """Per-token distribution statistics over the same tokens and decode batches as
        `loglikelihood` (so its log-probabilities equal the scored ones), computed batch by
        batch from llama.cpp's logits buffer."""
        return [_heard(on_answer, i, self._token_stats_one(self.encode_request(r))) for i, r in enumerate(reqs)]

    def _token_stats_one(self, pair: EncodedPair) -> TokenStats:
        acc = StatsAccumulator(pair.continuation)
        n_context, feed = len(pair.context), list(pair.continuation[:-1])
        if self.prefix_reuse:
            acc.add(self._load_context(pair.context)[None, :])
            self.llm.n_tokens = n_context
            if feed:
                self._decode(feed, logits_from=n_context, on_rows=acc.add)
        else:
            self.reset()
            self._decode([*pair.context, *feed], logits_from=n_context - 1, on_rows=acc.add)
            self.reset()
        return acc.result(n_context, pair.n_truncated)

    def _generate_one(self, req: GenerateRequest) -> Generation:
        n_ctx = self._load_params["n_ctx"]
        if req.max_tokens >= n_ctx - 1:
            raise LlmassayError(f"llamacpp: max_tokens {req.max_tokens} leaves no room for a prompt in n_ctx {n_ctx}")
        kwargs: dict[str, Any] = {
            "max_tokens": req.max_tokens,
            "temperature": req.temperature,
            "seed": req.seed + req.repeat,
            "stop": list(req.stop) or None,
        }
        if req.json_schema is not None:
            kwargs["grammar"] = self._checked_grammar(schema_to_gbnf(req.json_schema))
        elif req.grammar is not None:
            kwargs["grammar"] = self._checked_grammar(req.grammar)
        if req.watermark is not None:
            from llmassay.watermark.processor import llamacpp_processor

            kwargs["logits_processor"] = llamacpp_processor(req.watermark)
        if not self.prefix_reuse:
            self.reset()
        cut = [0]
        start = time.perf_counter()
        with self._fitted_prompts(req.max_tokens, cut):
            if req.messages is not None:
                messages = [{"role": role, "content": content} for role, content in req.messages]
                out = self.llm.create_chat_completion(messages=messages, **kwargs)
                choice = out["choices"][0]
                text = choice["message"]["content"] or ""
            else:
                out = self.llm.create_completion(prompt=req.prompt, **kwargs)
                choice = out["choices"][0]
                text = choice["text"]
        latency = time.perf_counter() - start
        usage = out["usage"]
        self._context_logits = None  # generation moved the KV cache on
        self.tokens_evaluated += usage["prompt_tokens"] + usage["completion_tokens"]
        return Generation(
            text=text,
            n_prompt_tokens=usage["prompt_tokens"],
            n_tokens=usage["completion_tokens"],
            finish_reason=choice.get("finish_reason") or "stop",
            latency_s=latency,
            n_truncated_tokens=cut[0],
        )

    @contextlib.contextmanager
    def _fitted_prompts(self, max_tokens: int, cut: list[int]) -> Any:
        """While active, prompts reaching `llm.create_completion` (directly, or rendered
        from a chat by llama-cpp-python's chat handler) are cut from the left to leave
        room for `max_tokens`; `cut[0]` receives the number of tokens dropped. Unfitted,
        llama-cpp-python raises on a long prompt and silently shortens max_tokens on a
        nearly long one."""
        llm, original = self.llm, self.llm.create_completion
        budget = self._load_params["n_ctx"] - max_tokens - 1

        def create_completion(prompt: Any, *args: Any, **kwargs: Any) -> Any:
            tokens = prompt if isinstance(prompt, list) else llm.tokenize(prompt.encode("utf-8"), add_bos=True, special=True)
            if len(tokens) > budget:
                cut[0] = len(tokens) - budget
                prompt = tokens[cut[0] :]
            return original(prompt, *args, **kwargs)

        llm.create_completion = create_completion
        try:
            yield
        finally:
            del llm.create_completion  # the class's method again

    def _checked_grammar(self, gbnf: str) -> Any:
        """A LlamaGrammar that llama.cpp has parsed, or a one-line error with the parser's
        reason. llama-cpp-python parses only when sampling starts, where a failure is a
        null sampler and a segmentation fault."""
        if gbnf not in self._grammars:
            with _captured_stderr() as log:
                parses = internals.grammar_parses(self.llm, gbnf)
            if not parses:
                raise LlmassayError(f"llamacpp: grammar rejected by llama.cpp: {_grammar_error(log.getvalue(), gbnf)}")
            self._grammars[gbnf] = internals.grammar(gbnf)
        return self._grammars[gbnf]


@contextlib.contextmanager
def _captured_stderr() -> Any:
    """Collect what llama.cpp writes to file descriptor 2 and to sys.stderr (its log
    callback), so a parse error becomes a message instead of a screenful."""
    text = io.StringIO()
    with tempfile.TemporaryFile(mode="w+b") as sink, contextlib.redirect_stderr(text):
        saved = os.dup(2)
        os.dup2(sink.fileno(), 2)
        try:
            yield text
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            text.write(sink.read().decode("utf-8", "replace"))


def _grammar_error(log: str, gbnf: str) -> str:
    """The first line of llama.cpp's complaint, shortened (it quotes the rest of the grammar)."""
    for line in log.splitlines():
        if "error" in line or "invalid" in line or "unsupported" in line:
            return line.split("error parsing grammar: ")[-1].strip()[:120]
    return f"no parse ({len(gbnf)} characters of grammar)"
