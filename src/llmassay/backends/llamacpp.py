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
            logits_all=True,
            seed=seed,
            verbose=False,
        )
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
        n_ctx = self._load_params["n_ctx"]
        encoded = [
            encode_pair(
                r,
                lambda t: self._encode(t, add_bos=True),
                self._prefix_token(),
                n_ctx,
                encode_plain=lambda t: self._encode(t, add_bos=False),
            )
            for r in reqs
        ]
        # Visit contexts in token order so consecutive ones share the longest prefixes.
        order = sorted(range(len(reqs)), key=lambda i: (encoded[i].context, encoded[i].continuation))
        results: list[LoglikelihoodResult | None] = [None] * len(reqs)
        for context, members in groupby(order, key=lambda i: encoded[i].context):
            self._load_context(context)
            for i in members:
                results[i] = self._score_after_context(encoded[i])
        return [r for r in results if r is not None]

    def generate(self, reqs: Sequence[GenerateRequest]) -> list[Generation]:
        return [self._generate_one(r) for r in reqs]

    # -- internals ----------------------------------------------------------------------
    def _encode(self, text: str, add_bos: bool) -> list[int]:
        # add_bos only adds a BOS where the GGUF's tokenizer metadata asks for one.
        return self.llm.tokenize(text.encode("utf-8"), add_bos=add_bos, special=False)

    def _prefix_token(self) -> int:
        return int(self.llm.token_bos())

    def _load_context(self, context: tuple[int, ...]) -> None:
        """Make the KV cache hold exactly `context`, re-using what it already holds."""
        current = self.llm.input_ids[: self.llm.n_tokens]
        shared = 0
        for a, b in zip(current, context):
            if a != b:
                break
            shared += 1
        if shared == len(context):
            self.llm.n_tokens = shared  # logits of the last context position are kept
            return
        self.llm.n_tokens = shared
        self.llm.eval(list(context[shared:]))
        self.tokens_evaluated += len(context) - shared

    def _score_after_context(self, pair: EncodedPair) -> LoglikelihoodResult:
        n_context = len(pair.context)
        self.llm.n_tokens = n_context
        # The last continuation token is never fed: its logits are not needed.
        feed = list(pair.continuation[:-1])
        if feed:
            self.llm.eval(feed)
            self.tokens_evaluated += len(feed)
        rows = self.llm.scores[n_context - 1 : n_context - 1 + len(pair.continuation)]
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
        self.tokens_evaluated += usage["prompt_tokens"] + usage["completion_tokens"]
        return Generation(
            text=text,
            n_prompt_tokens=usage["prompt_tokens"],
            n_tokens=usage["completion_tokens"],
            finish_reason=choice.get("finish_reason") or "stop",
            latency_s=latency,
        )
