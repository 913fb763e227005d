"""llama.cpp through llama-cpp-python: the embedded default backend.

Loglikelihoods are exact per-token log-softmax values. A context shared by several
continuations (the choices of one question, or a few-shot prefix shared by all
questions) is evaluated once: the KV cache is truncated back to the shared prefix and
only the new tokens are decoded, which gives the same numbers as re-reading everything.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from itertools import groupby
from typing import Any

import numpy as np

from llmassay.backends._scoring import EncodedPair, encode_pair, score_continuation
from llmassay.hashing import file_sha256
from llmassay.models import resolve_model_path
from llmassay.types import (
    GenerateRequest,
    Generation,
    LlmassayError,
    LoglikelihoodRequest,
    LoglikelihoodResult,
)


class LlamaCppBackend:
    """`llamacpp/<alias or path.gguf>`; model args: n_ctx, n_threads, n_batch."""

    def __init__(
        self,
        model: str,
        n_ctx: int = 2048,
        n_threads: int | None = None,
        n_batch: int = 512,
        seed: int = 0,
        **unknown: Any,
    ) -> None:
        if unknown:
            raise LlmassayError(f"llamacpp: unknown model args: {', '.join(sorted(unknown))}")
        import llama_cpp

        self.model_path = resolve_model_path(model)
        self.name = f"llamacpp/{model}"
        self._load_params = {"n_ctx": int(n_ctx), "n_batch": int(n_batch)}
        self._llama_cpp = llama_cpp
        self.llm = llama_cpp.Llama(
            model_path=str(self.model_path),
            n_ctx=int(n_ctx),
            n_batch=int(n_batch),
            n_threads=n_threads or os.cpu_count(),
            n_threads_batch=n_threads or os.cpu_count(),  # prefill and scoring run as batches
            logits_all=False,  # logits are requested per position in _decode
            seed=seed,
            verbose=False,
        )
        self._n_vocab = self.llm.n_vocab()
        self._context_logits: tuple[tuple[int, ...], np.ndarray] | None = None
        self._fingerprint: dict[str, Any] | None = None
        self.tokens_evaluated = 0

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

    def loglikelihood(self, reqs: Sequence[LoglikelihoodRequest]) -> list[LoglikelihoodResult]:
        encoded = [self.encode_request(r) for r in reqs]
        # Visit contexts in token order so consecutive ones share the longest prefixes.
        order = sorted(range(len(reqs)), key=lambda i: (encoded[i].context, encoded[i].continuation))
        results: list[LoglikelihoodResult | None] = [None] * len(reqs)
        for context, members in groupby(order, key=lambda i: encoded[i].context):
            context_row = self._load_context(context)
            for i in members:
                results[i] = self._score_after_context(encoded[i], context_row)
        return [r for r in results if r is not None]

    def generate(self, reqs: Sequence[GenerateRequest]) -> list[Generation]:
        return [self._generate_one(r) for r in reqs]

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

    def _decode(self, tokens: list[int], logits_from: int) -> np.ndarray:
        """Append `tokens` to the KV cache (which holds `llm.n_tokens` tokens) and return the
        logits of the appended positions >= `logits_from` (absolute), in order.

        Only those positions are computed through the output layer — for SmolLM2-135M that
        layer is ≈28 M of 135 M parameters, so a prefill that needs one row of logits
        costs markedly less than llama-cpp-python's `logits_all`.
        """
        llm = self.llm
        llm._ctx.kv_cache_seq_rm(-1, llm.n_tokens, -1)
        batch = llm._batch.batch
        rows: list[np.ndarray] = []
        for start in range(0, len(tokens), llm.n_batch):
            chunk = tokens[start : start + llm.n_batch]
            n_past = llm.n_tokens
            wanted = 0
            for i, token in enumerate(chunk):
                batch.token[i] = token
                batch.pos[i] = n_past + i
                batch.seq_id[i][0] = 0
                batch.n_seq_id[i] = 1
                flag = n_past + i >= logits_from
                batch.logits[i] = flag
                wanted += flag
            batch.n_tokens = len(chunk)
            llm._ctx.decode(llm._batch)
            if wanted:
                out = np.ctypeslib.as_array(llm._ctx.get_logits(), shape=(wanted * self._n_vocab,))
                rows.append(out.reshape(wanted, self._n_vocab).copy())
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
        return score_continuation(rows, pair.continuation, n_context)

    def _generate_one(self, req: GenerateRequest) -> Generation:
        kwargs: dict[str, Any] = {
            "max_tokens": req.max_tokens,
            "temperature": req.temperature,
            "seed": req.seed + req.repeat,
            "stop": list(req.stop) or None,
        }
        if req.json_schema is not None:
            kwargs["grammar"] = self._llama_cpp.LlamaGrammar.from_json_schema(req.json_schema, verbose=False)
        elif req.grammar is not None:
            kwargs["grammar"] = self._llama_cpp.LlamaGrammar.from_string(req.grammar, verbose=False)
        start = time.perf_counter()
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
        )
