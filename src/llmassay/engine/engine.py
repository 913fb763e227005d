"""The engine between probes and a backend: dedup → cache → length-sorted batches.

Probes hand over plain request values and get answers back in their own order; they
never see the backend. Every optimisation (dedup across samples and probes, the cache,
batching, prefix reuse inside a backend) therefore serves every probe at once.

Every answer is cached the moment it exists: a backend whose `generate`/`loglikelihood`
take an `on_answer(i, answer)` keyword (openai) reports each answer as it arrives, so a
request that fails mid-batch loses no neighbour's answer (on a paid API, no answer is
bought twice); backends that answer whole lists (llamacpp, hf, the Ray executor) are
cached per batch.
"""

from __future__ import annotations

import inspect
import threading
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any, TypeVar

from llmassay.backends.base import Backend, optional_method
from llmassay.backends.token_stats import TokenStats, TokenStatsRequest
from llmassay.engine.cache import RequestCache, request_key
from llmassay.engine.rolling import TokenLoglikelihoodRequest
from llmassay.types import GenerateRequest, Generation, LlmassayError, LoglikelihoodRequest, LoglikelihoodResult

Req = TypeVar("Req", LoglikelihoodRequest, GenerateRequest, TokenLoglikelihoodRequest)
Ans = TypeVar("Ans", LoglikelihoodResult, Generation, TokenStats)


@dataclass
class EngineStats:
    requests: int = 0  # as asked by probes
    unique: int = 0  # after dedup
    cache_hits: int = 0
    computed: int = 0
    tokens: int = 0  # tokens read + written by the model for computed requests
    truncated: int = 0  # unique requests whose input was cut from the left to fit the context window


ProgressFn = Callable[[int], None]  # called with the number of requests just answered


@dataclass
class Pending:
    """The engine call in progress, for a progress bar that moves with each answer: its
    unique requests, how many are answered (cached ones included), and the tokens of the
    answers computed so far in this engine's life."""

    total: int = 0
    done: int = 0
    tokens: int = 0
    calls: int = 0  # engine calls so far: tells a new call's share from the last one's


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
        self._kept = 0  # answers this engine wrote to the cache (named when a backend fails)
        self.pending = Pending()

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

    def token_stats(self, reqs: Sequence[TokenStatsRequest]) -> list[TokenStats]:
        """Per-token distribution statistics (log-rank, Fast-DetectGPT): an optional
        capability, so a backend without it is named in a one-line error."""
        compute = optional_method(self.backend, "token_stats",
                                  "token_stats (per-token distribution statistics: log-rank, Fast-DetectGPT)")
        return self._run("token_stats", reqs, compute, TokenStats.from_dict, lambda s: s.n_tokens + s.n_context_tokens)

    def loglikelihood_tokens(self, reqs: Sequence[TokenLoglikelihoodRequest]) -> list[LoglikelihoodResult]:
        """Token-level requests (rolling windows, engine/rolling.py), cached like any."""
        return self._run(
            "loglikelihood_tokens",
            reqs,
            optional_method(self.backend, "loglikelihood_tokens",
                            "loglikelihood_tokens (token-window log-likelihoods for loglikelihood_rolling)"),
            lambda d: LoglikelihoodResult(**{**d, "token_logprobs": tuple(d.get("token_logprobs", ()))}),
            lambda r: r.n_tokens + r.n_context_tokens,
            order=lambda r: (r.context, r.continuation),  # shared prefixes side by side
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
        order: Callable[[Any], Any] | None = None,
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
        self.pending.total, self.pending.done = len(unique), 0
        self.pending.calls += 1
        self._progress(len(answers))
        todo = sorted((r for r in unique if r not in answers), key=order or self._order_key())
        for start in range(0, len(todo), self.batch_size):
            batch = todo[start : start + self.batch_size]
            results = self._compute_batch(kind, batch, keys, compute, count_tokens)
            for r, a in zip(batch, results):
                answers[r] = a
            self.stats.computed += len(batch)
            self.stats.tokens += sum(count_tokens(a) for a in results)
        self.stats.truncated += sum(1 for a in answers.values() if getattr(a, "n_truncated_tokens", 0))
        return [answers[r] for r in reqs]

    def _compute_batch(
        self, kind: str, batch: list[Req], keys: dict[Req, str], compute: Callable[..., list[Ans]],
        count_tokens: Callable[[Ans], int],
    ) -> list[Ans]:
        """One backend call; each answer goes to the cache (and the progress bar) as soon
        as the backend reports it, the rest when the batch returns. A backend error says how
        many answers were kept, so the user knows a rerun will not pay for them again."""
        stored: set[int] = set()
        heard: set[int] = set()
        lock = threading.Lock()

        def keep(i: int, answer: Ans) -> None:
            if self.cache is not None:
                self.cache.put_many(kind, [(keys[batch[i]], asdict(answer))])
            with lock:
                heard.add(i)
                self.pending.tokens += count_tokens(answer)
                if self.cache is not None:
                    stored.add(i)
                    self._kept += 1
                self._progress(1)  # under the lock: answers arrive on several threads

        try:
            results = compute(batch, on_answer=keep) if _reports_answers(compute) else compute(batch)
        except LlmassayError as exc:
            if self.cache is None:
                raise
            kept = self._kept
            raise exc.reworded(
                f"{exc} ({kept} answer{'' if kept == 1 else 's'} kept in the cache; rerun to continue)"
            ) from None
        if len(results) != len(batch):
            raise RuntimeError(f"backend returned {len(results)} answers for {len(batch)} requests")
        if self.cache is not None:
            rest = [(keys[r], asdict(a)) for i, (r, a) in enumerate(zip(batch, results)) if i not in stored]
            self.cache.put_many(kind, rest)
            self._kept += len(rest)
        unheard = [a for i, a in enumerate(results) if i not in heard]
        self.pending.tokens += sum(count_tokens(a) for a in unheard)
        self._progress(len(unheard))
        return results

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
        view.stats, view._fingerprint, view.pending = self.stats, self._fingerprint, self.pending
        return view

    def reset_backend(self) -> None:
        """Ask the backend to forget what it carries between calls (llama.cpp's KV cache of a
        shared prefix), so the next request is computed as if it were the first; a no-op for
        a backend without such state. A check of batch invariance is vacuous without it."""
        reset = getattr(self.backend, "reset", None)
        if callable(reset):
            reset()

    def count_direct(self, tokens: int) -> None:
        """A request a probe ran on `self.backend` itself (to time it: a cached answer has no
        latency) counts in the run's footer like any the engine computed."""
        self.stats.requests += 1
        self.stats.unique += 1
        self.stats.computed += 1
        self.stats.tokens += tokens

    @property
    def kept(self) -> int:
        """Answers this engine wrote to the cache: what an interrupted run keeps besides
        its finished samples."""
        return self._kept

    def _progress(self, n: int) -> None:
        self.pending.done += n
        if self.on_progress is not None and n:
            self.on_progress(n)


def _reports_answers(compute: Callable[..., Any]) -> bool:
    """Whether a backend call takes `on_answer` (answers reported one by one as they arrive)."""
    try:
        return "on_answer" in inspect.signature(compute).parameters
    except (TypeError, ValueError):  # a builtin or a proxy without a signature
        return False
