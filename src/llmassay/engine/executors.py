"""Where requests run: in this process (local) or on Ray actors, behind one interface.

An executor *is* a Backend to the engine (loglikelihood, generate, tokenize, fingerprint,
and the optional token_stats and loglikelihood_tokens, which a worker whose backend lacks
them answers with the same one-line error as the engine, `optional_method`; model_size,
None when the backend gives none, so a Ray run records the model's size as a local one),
so the engine's dedup, cache and the RunStore's resume work the same whichever runs:
`--executor ray` is the only switch. The Ray executor loads one backend per actor and
sends each actor a shard of every batch; requests that share a context go to the same
actor so the backend's shared-prefix reuse still applies, and answers come back in the
caller's order. Each backend's answers depend only on the request, so the results are
the local executor's, request for request (tests/test_executors.py checks it).
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Sequence
from typing import Any

from llmassay.backends.base import Backend, backend_factory, load_backend, optional_method, split_model_spec
from llmassay.backends.token_stats import TokenStats, TokenStatsRequest
from llmassay.engine.rolling import TokenLoglikelihoodRequest
from llmassay.raycluster import connect_ray
from llmassay.types import (
    GenerateRequest,
    Generation,
    LlmassayError,
    LoglikelihoodRequest,
    LoglikelihoodResult,
    RuntimeFailure,
)

EXECUTORS = ("local", "ray")


def load_executor(kind: str, spec: str, model_args: dict[str, Any], workers: int | None = None) -> Backend:
    """`local` → the backend itself; `ray` → a RayExecutor over `workers` actors."""
    if kind == "local":
        return load_backend(spec, **model_args)
    if kind == "ray":
        return RayExecutor(spec, model_args, workers or 2)
    raise LlmassayError(f"--executor '{kind}': unknown (known: {', '.join(EXECUTORS)})")


def shard_by_context(sizes: Sequence[tuple[str, int]], n_shards: int) -> list[list[int]]:
    """Indices of requests per shard: requests with the same context stay together and
    groups go, largest first, to the least loaded shard (deterministic: ties by order)."""
    groups: dict[str, list[int]] = {}
    for i, (context, _) in enumerate(sizes):
        groups.setdefault(context, []).append(i)
    weight = {c: sum(sizes[i][1] for i in members) for c, members in groups.items()}
    order = sorted(groups, key=lambda c: (-weight[c], groups[c][0]))
    shards: list[list[int]] = [[] for _ in range(n_shards)]
    load = [0] * n_shards
    for context in order:
        target = min(range(n_shards), key=lambda s: (load[s], s))
        shards[target].extend(groups[context])
        load[target] += weight[context]
    return [sorted(s) for s in shards]


def static_request_order(factory: Any) -> Any:
    """The backend class's `request_order` when it needs no instance (a staticmethod, as
    llamacpp's text order), else None: an order that tokenises (hf) lives in the actors,
    and the engine then uses its default length order."""
    hook = inspect.getattr_static(factory, "request_order", None)
    return factory.request_order if isinstance(hook, staticmethod) else None


class _BackendWorker:
    """The body of a Ray actor: one backend, loaded once, answering shards."""

    def __init__(self, spec: str, model_args: dict[str, Any], threads: int) -> None:
        os.environ.setdefault("OMP_NUM_THREADS", str(threads))
        kind, _ = split_model_spec(spec)
        if kind == "llamacpp":
            model_args = {"n_threads": threads, **model_args}
        elif kind == "hf":
            import torch

            torch.set_num_threads(threads)
        # A constructor that raises kills the actor and Ray hides the cause; keep the
        # user's error and raise it from the first call, where it reaches the driver whole.
        self.backend: Backend | None = None
        self.error: LlmassayError | None = None
        try:
            self.backend = load_backend(spec, **model_args)
        except LlmassayError as exc:
            self.error = exc

    def loglikelihood(self, reqs: list[LoglikelihoodRequest]) -> tuple[list[LoglikelihoodResult], int]:
        return self._loaded().loglikelihood(reqs), self._evaluated()

    def generate(self, reqs: list[GenerateRequest]) -> tuple[list[Generation], int]:
        return self._loaded().generate(reqs), self._evaluated()

    def token_stats(self, reqs: list[TokenStatsRequest]) -> tuple[list[TokenStats], int]:
        return optional_method(self._loaded(), "token_stats")(reqs), self._evaluated()

    def loglikelihood_tokens(self, reqs: list[TokenLoglikelihoodRequest]) -> tuple[list[LoglikelihoodResult], int]:
        return optional_method(self._loaded(), "loglikelihood_tokens")(reqs), self._evaluated()

    def tokenize(self, text: str) -> list[int]:
        return self._loaded().tokenize(text)

    def model_size(self) -> dict[str, Any] | None:
        """The backend's optional `model_size()`, or None when it has none."""
        hook = getattr(self._loaded(), "model_size", None)
        return hook() if callable(hook) else None

    def fingerprint(self) -> dict[str, Any]:
        return self._loaded().fingerprint()

    def _loaded(self) -> Backend:
        """The backend, or the error that kept it from loading (whichever call comes first)."""
        if self.backend is None:
            raise self.error or LlmassayError("--executor ray: the worker has no backend")
        return self.backend

    def _evaluated(self) -> int:
        return int(getattr(self.backend, "tokens_evaluated", 0) or 0)


class RayExecutor:
    """`workers` Ray actors, each holding its own copy of the backend.

    Connects to a running cluster when RAY_ADDRESS is set, else starts a local one with
    this machine's CPUs; each actor gets an equal share of them (llama.cpp's n_threads and
    torch's intra-op threads are set to that share unless the model args say otherwise).
    """

    def __init__(self, spec: str, model_args: dict[str, Any], workers: int = 2) -> None:
        if workers < 1:
            raise LlmassayError("--workers must be a positive integer")
        self.name = spec
        # The backend's request order (llamacpp: text order, so prompts sharing a prefix
        # reach the same actor back to back) must reach the engine through the proxy, or
        # the engine falls back to length order and every actor re-reads shared prefixes.
        order = static_request_order(backend_factory(spec))
        if order is not None:
            self.request_order = order
        ray, _ = connect_ray()
        self._ray = ray
        cpus = int(ray.cluster_resources().get("CPU", os.cpu_count() or 1))
        threads = max(1, cpus // workers)
        actor_cls = ray.remote(num_cpus=min(threads, cpus))(_BackendWorker)
        self._actors = [actor_cls.remote(spec, model_args, threads) for _ in range(workers)]
        self._evaluated = [0] * workers
        fingerprints = self._get([a.fingerprint.remote() for a in self._actors])
        if any(fp != fingerprints[0] for fp in fingerprints):
            raise LlmassayError("--executor ray: workers loaded different models (fingerprints differ)")
        self._fingerprint = fingerprints[0]

    @property
    def workers(self) -> int:
        return len(self._actors)

    @property
    def tokens_evaluated(self) -> int:
        return sum(self._evaluated)

    def fingerprint(self) -> dict[str, Any]:
        return self._fingerprint

    def tokenize(self, text: str) -> list[int]:
        return self._get(self._actors[0].tokenize.remote(text))

    def model_size(self) -> dict[str, Any] | None:
        """The backend's size as its first actor reads it (every actor loaded the same model:
        the fingerprints agree), so a Ray run records `model.size` as a local one does."""
        return self._get(self._actors[0].model_size.remote())

    def loglikelihood(self, reqs: Sequence[LoglikelihoodRequest]) -> list[LoglikelihoodResult]:
        shards = shard_by_context([(r.context, r.size()) for r in reqs], self.workers)
        return self._scatter("loglikelihood", reqs, shards)

    def generate(self, reqs: Sequence[GenerateRequest]) -> list[Generation]:
        shards = shard_by_context([(str(i), r.size() + r.max_tokens) for i, r in enumerate(reqs)], self.workers)
        return self._scatter("generate", reqs, shards)

    def token_stats(self, reqs: Sequence[TokenStatsRequest]) -> list[TokenStats]:
        shards = shard_by_context([(r.context, r.size()) for r in reqs], self.workers)
        return self._scatter("token_stats", reqs, shards)

    def loglikelihood_tokens(self, reqs: Sequence[TokenLoglikelihoodRequest]) -> list[LoglikelihoodResult]:
        shards = shard_by_context([(",".join(map(str, r.context)), r.size()) for r in reqs], self.workers)
        return self._scatter("loglikelihood_tokens", reqs, shards)

    def close(self) -> None:
        for actor in self._actors:
            self._ray.kill(actor)
        self._actors = []

    def _scatter(self, method: str, reqs: Sequence[Any], shards: list[list[int]]) -> list[Any]:
        calls = [
            (w, shard, getattr(self._actors[w], method).remote([reqs[i] for i in shard]))
            for w, shard in enumerate(shards)
            if shard
        ]
        answers: list[Any] = [None] * len(reqs)
        for (w, shard, _), (results, evaluated) in zip(calls, self._get([c[2] for c in calls])):
            self._evaluated[w] = evaluated
            for i, result in zip(shard, results):
                answers[i] = result
        return answers

    def _get(self, refs: Any) -> Any:
        """ray.get, with a backend's own one-line error passed through as itself."""
        try:
            return self._ray.get(refs)
        except self._ray.exceptions.RayTaskError as exc:
            cause = getattr(exc, "cause", None)
            if isinstance(cause, LlmassayError):
                raise cause.reworded(str(cause)) from None
            raise
        except self._ray.exceptions.RayActorError as exc:
            raise RuntimeFailure(f"--executor ray: a worker died ({str(exc).splitlines()[0]})") from None
