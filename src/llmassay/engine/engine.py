"""The engine between probes and a backend: dedup → cache → length-sorted batches.

Probes hand over plain request values and get answers back in their own order; they
never see the backend. Every optimisation (dedup across samples and probes, the cache,
batching, prefix reuse inside a backend) therefore serves every probe at once.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any, TypeVar

from llmassay.backends.base import Backend
from llmassay.engine.cache import RequestCache, request_key
from llmassay.types import GenerateRequest, Generation, LoglikelihoodRequest, LoglikelihoodResult

Req = TypeVar("Req", LoglikelihoodRequest, GenerateRequest)
Ans = TypeVar("Ans", LoglikelihoodResult, Generation)


@dataclass
class EngineStats:
    requests: int = 0  # as asked by probes
    unique: int = 0  # after dedup
    cache_hits: int = 0
    computed: int = 0
    tokens: int = 0  # tokens read + written by the model for computed requests


ProgressFn = Callable[[int], None]  # called with the number of requests just answered


class Engine:
    def __init__(
        self,
        backend: Backend,
        cache: RequestCache | None = None,
        batch_size: int = 64,
        on_progress: ProgressFn | None = None,
    ) -> None:
        self.backend = backend
        self.cache = cache
        self.batch_size = max(1, int(batch_size))
        self.on_progress = on_progress
        self.stats = EngineStats()
        self._fingerprint: dict[str, Any] | None = None

    @property
    def fingerprint(self) -> dict[str, Any]:
        if self._fingerprint is None:
            self._fingerprint = self.backend.fingerprint()
        return self._fingerprint

    def loglikelihood(self, reqs: Sequence[LoglikelihoodRequest]) -> list[LoglikelihoodResult]:
        return self._run(
            "loglikelihood",
            reqs,
            self.backend.loglikelihood,
            lambda d: LoglikelihoodResult(**{**d, "token_logprobs": tuple(d.get("token_logprobs", ()))}),
            lambda r: r.n_tokens + r.n_context_tokens,
        )

    def generate(self, reqs: Sequence[GenerateRequest]) -> list[Generation]:
        return self._run(
            "generate",
            reqs,
            self.backend.generate,
            lambda d: Generation(**d),
            lambda g: g.n_tokens + g.n_prompt_tokens,
        )

    def _run(
        self,
        kind: str,
        reqs: Sequence[Req],
        compute: Callable[[Sequence[Req]], list[Ans]],
        decode: Callable[[dict[str, Any]], Ans],
        count_tokens: Callable[[Ans], int],
    ) -> list[Ans]:
        self.stats.requests += len(reqs)
        unique = list(dict.fromkeys(reqs))
        self.stats.unique += len(unique)
        answers: dict[Req, Ans] = {}
        keys: dict[Req, str] = {}
        if self.cache is not None:
            keys = {r: request_key(self.fingerprint, kind, asdict(r)) for r in unique}
            cached = self.cache.get_many(list(keys.values()))
            for r in unique:
                if keys[r] in cached:
                    answers[r] = decode(cached[keys[r]])
            self.stats.cache_hits += len(answers)
            self._progress(len(answers))
        todo = sorted((r for r in unique if r not in answers), key=self._order_key())
        for start in range(0, len(todo), self.batch_size):
            batch = todo[start : start + self.batch_size]
            results = compute(batch)
            if len(results) != len(batch):
                raise RuntimeError(f"backend returned {len(results)} answers for {len(batch)} requests")
            for r, a in zip(batch, results):
                answers[r] = a
            if self.cache is not None:
                self.cache.put_many(kind, [(keys[r], asdict(a)) for r, a in zip(batch, results)])
            self.stats.computed += len(batch)
            self.stats.tokens += sum(count_tokens(a) for a in results)
            self._progress(len(batch))
        return [answers[r] for r in reqs]

    def _order_key(self) -> Callable[[Any], Any]:
        """Longest first by default (least padding for batched backends); a backend that
        keeps its KV cache between calls orders by text instead (`request_order`), so
        requests sharing a prefix — one question's prompt variants — run back to back
        even across batches."""
        order = getattr(self.backend, "request_order", None)
        return order if callable(order) else (lambda r: -r.size())

    def without_cache(self, batch_size: int | None = None) -> Engine:
        """The same backend and counters, computing every request afresh: a check of
        nondeterminism (batch invariance, re-asking) must not read its answer from the cache."""
        view = Engine(self.backend, None, batch_size or self.batch_size, self.on_progress)
        view.stats, view._fingerprint = self.stats, self._fingerprint
        return view

    def _progress(self, n: int) -> None:
        if self.on_progress is not None and n:
            self.on_progress(n)
