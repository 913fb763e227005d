"""What a long-context grid costs before it runs: prompt tokens, the tokens left to prefill
after shared prefixes, and the time that makes at given prefill and decode rates.

The probe itself (`probes._grid_cost`) runs against a backend that only tokenizes (the GGUF's vocabulary, no
weights) and answers with nothing, so the count is of the very prompts a real run sends,
in the order llama.cpp would get them. It is how the default grids were sized (README,
"Long context"); `scripts/longctx_cost.py` prints it for any grid.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from llmassay.backends.llamacpp import LlamaCppBackend
from llmassay.types import GenerateRequest, Generation, LlmassayError, LoglikelihoodRequest, LoglikelihoodResult

# Idle 2-core rates (tokens/s) of this project's machine. SmolLM2: docs/benchmarks.md ("The
# limit": 337-340 tok/s prefill; multi-sequence: 329 prefill, 140 in generation steps).
# Gemma-3-270M: not timed on an idle machine; its non-embedding weights (~100M in 18
# layers) cost what SmolLM2's (~106M in 30) do per prompt token, and its 262k-word output
# layer (168M multiply-adds, 6x SmolLM2's) runs once per generated token only, hence about
# half the decode rate. Estimates: replace them with measured rates when there are some.
RATES = {"smollm2-135m": (330.0, 140.0), "gemma3-270m": (300.0, 70.0)}
# Those rates were measured on ~100-token prompts; a token at position p also attends to the
# p before it: 4·p·(heads × head_dim)·layers FLOPs against 2 × the non-embedding weights'.
# SmolLM2: 4·576·30 / 212M = 1/3070 per position; Gemma-3: only 3 of its 18 layers attend
# globally (the others within 512 tokens, at most +16 %), 4·1024·3 / 200M = 1/16300.
PER_POSITION = {"smollm2-135m": 1 / 3070, "gemma3-270m": 1 / 16300}


@dataclass
class _Window:
    """What `grid.context_window` reads from a llama.cpp model: n_ctx() and metadata."""

    loaded: int

    def n_ctx(self) -> int:
        return self.loaded

    metadata: dict[str, str] | None = None


class CountingBackend:
    """Tokenizes with `encode` and answers every generation with nothing."""

    name = "count"
    request_order = staticmethod(LlamaCppBackend.request_order)

    def __init__(self, encode: Callable[[str], list[int]], n_ctx: int) -> None:
        self.encode, self.llm = encode, _Window(n_ctx)
        self.asked: list[GenerateRequest] = []  # what the engine sent, in its order

    def tokenize(self, text: str) -> list[int]:
        return self.encode(text)

    def generate(self, reqs: Sequence[GenerateRequest]) -> list[Generation]:
        self.asked += reqs
        return [Generation("", len(self.encode(request_text(r))), 0, "stop", 0.0) for r in reqs]

    def loglikelihood(self, reqs: Sequence[LoglikelihoodRequest]) -> list[LoglikelihoodResult]:
        raise LlmassayError("cost: the long-context probes only generate")

    def fingerprint(self) -> dict[str, Any]:
        return {"backend": self.name, "id": id(self)}


def request_text(req: GenerateRequest) -> str:
    return req.prompt if req.prompt is not None else "\n".join(c for _, c in req.messages or ())


def prefill_tokens(requests: Sequence[Any], backend: Any) -> list[int]:
    """Per request, the prompt tokens not shared with the request computed just before it
    (in the engine's order): what a backend that keeps a shared prefix's KV cache has to
    prefill. An estimate for chat requests (the template's tokens are not counted)."""
    order_key = getattr(backend, "request_order", None)
    texts = [request_text(r) for r in requests]
    order = sorted(range(len(requests)), key=(lambda i: order_key(requests[i])) if callable(order_key) else (lambda i: -requests[i].size()))
    out = [0] * len(requests)
    previous: list[int] = []
    seen: set[str] = set()
    for i in order:
        if texts[i] in seen:  # a duplicate is answered once by the engine
            continue
        seen.add(texts[i])
        tokens = backend.tokenize(texts[i])
        shared = 0
        for a, b in zip(previous, tokens):
            if a != b:
                break
            shared += 1
        out[i] = len(tokens) - shared
        previous = tokens
    return out


@dataclass(frozen=True)
class Cost:
    requests: int
    prompt_tokens: int
    prefill_tokens: int  # after the prefix each request shares with the one before it
    answer_tokens: int  # the most the answers may take (the budget per request × requests)
    prefill_positions: int = 0  # Σ of the positions of the prefilled tokens (attention's cost)
    answer_positions: int = 0  # Σ over requests of answer budget × prompt length

    def seconds(self, prefill_rate: float, decode_rate: float, per_position: float = 0.0) -> tuple[float, float]:
        """(prefill only, prefill + every answer at its full budget): the range of the run's time,
        each token costing 1 + per_position × its position short-context tokens."""
        low = (self.prefill_tokens + per_position * self.prefill_positions) / prefill_rate
        return low, low + (self.answer_tokens + per_position * self.answer_positions) / decode_rate
