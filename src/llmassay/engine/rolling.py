"""Rolling log-likelihood of whole documents (lm-eval's `loglikelihood_rolling`).

A document longer than the model's window is cut into lm-eval's disjoint token windows:
the first predicts up to `max_length` tokens after the prefix token, each next one the
following `max_length` tokens with as much preceding text as context as still fits
(`get_rolling_token_windows(context_len=1)` then `make_disjoint_window`). Every token of
the document is predicted exactly once, so the windows' log-probabilities sum to log P(doc).

The windows are token sequences, not text: decoding and re-encoding a cut would not give
the same tokens back. So a backend that scores them offers two calls beside the Protocol:
`rolling_tokens(text) -> (tokens, prefix_token, max_length)` and
`loglikelihood_tokens(reqs)`; the engine caches and deduplicates those requests like any.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from llmassay.types import LlmassayError

if TYPE_CHECKING:
    from llmassay.engine.engine import Engine


@dataclass(frozen=True)
class TokenLoglikelihoodRequest:
    """log P(continuation | context), both already token ids (one rolling window)."""

    context: tuple[int, ...]
    continuation: tuple[int, ...]

    def size(self) -> int:
        return len(self.context) + len(self.continuation)


@dataclass(frozen=True)
class RollingResult:
    logprob: float  # log P(document), summed over its windows
    n_tokens: int
    n_windows: int


def rolling_windows(tokens: list[int], prefix_token: int, max_length: int) -> list[TokenLoglikelihoodRequest]:
    """lm-eval 0.4.13's `get_rolling_token_windows(context_len=1)` + `make_disjoint_window`."""
    if max_length < 1:
        raise LlmassayError(f"loglikelihood_rolling: the model's window must be at least 1 token, not {max_length}")
    if not tokens:
        return []
    first = min(max_length, len(tokens))
    windows = [([prefix_token, *tokens[: first - 1]], tokens[:first])]
    predicted = first
    while predicted < len(tokens):
        n_pred = min(len(tokens) - predicted, max_length)
        end = predicted + n_pred
        windows.append((tokens[max(0, end - max_length - 1) : end - 1], tokens[end - n_pred : end]))
        predicted += n_pred
    return [TokenLoglikelihoodRequest(tuple(ctx[: len(ctx) - (len(pred) - 1)]), tuple(pred)) for ctx, pred in windows]


def rolling_backend(engine: Engine) -> Any:
    """The engine's backend if it can score token windows, else a one-line error naming it."""
    backend = engine.backend
    if not all(callable(getattr(backend, m, None)) for m in ("rolling_tokens", "loglikelihood_tokens")):
        raise LlmassayError(
            f"loglikelihood_rolling: backend '{getattr(backend, 'name', type(backend).__name__)}' cannot score "
            "token windows (use llamacpp/ or hf/)"
        )
    return backend


def loglikelihood_rolling(engine: Engine, texts: list[str]) -> list[RollingResult]:
    """log P(text) for each text, over lm-eval's windows; every window goes through the
    engine (cache, dedup), so a rerun computes nothing twice."""
    backend = rolling_backend(engine)
    per_text = []
    for text in texts:
        tokens, prefix, max_length = backend.rolling_tokens(text)
        per_text.append(rolling_windows(list(tokens), int(prefix), int(max_length)))
    flat = [w for windows in per_text for w in windows]
    answers = iter(engine.loglikelihood_tokens(flat))
    out = []
    for windows in per_text:
        got = [next(answers) for _ in windows]
        out.append(RollingResult(sum(a.logprob for a in got), sum(len(w.continuation) for w in windows), len(windows)))
    return out
