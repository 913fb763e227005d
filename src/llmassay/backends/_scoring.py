"""Tokenisation of (context, continuation) pairs (lm-eval's rules) and log-softmax
scoring, shared by the local backends so llamacpp/ and hf/ score the same token sequences
as lm-eval."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from llmassay.types import LlmassayError, LoglikelihoodRequest, LoglikelihoodResult


@dataclass(frozen=True)
class EncodedPair:
    context: tuple[int, ...]
    continuation: tuple[int, ...]
    n_truncated: int = 0  # context tokens cut from the left to fit the window


def encode_pair(
    req: LoglikelihoodRequest,
    encode: Callable[[str], list[int]],
    prefix_token: int,
    window: int | None = None,
    encode_plain: Callable[[str], list[int]] | None = None,
) -> EncodedPair:
    """lm-eval 0.4.13's `_encode_pair`: trailing spaces of the context move to the
    continuation and the continuation's tokens are the tail of the whole text's tokens.
    An empty context becomes the prefix token (`encode_plain`, without special tokens,
    encodes the continuation then). With `window` (the tokens the model can read: context
    + continuation[:-1]) the context is cut from the left, as lm-eval does, and the cut is
    counted; a continuation that alone does not fit is a one-line error."""
    context, continuation = req.context, req.continuation
    if not context:
        cont = (encode_plain or encode)(continuation)
        if not cont:
            raise LlmassayError(f"continuation {continuation!r} encodes to no tokens")
        ctx = [prefix_token] if cont[0] != prefix_token else cont[:1]
        cont = cont if cont[0] != prefix_token else cont[1:]
    else:
        n_spaces = len(context) - len(context.rstrip())
        if n_spaces:
            continuation = context[-n_spaces:] + continuation
            context = context[:-n_spaces]
        whole = encode(context + continuation)
        ctx = encode(context)
        cont = whole[len(ctx) :]
    if not ctx or not cont:
        raise LlmassayError(
            f"request ({req.context[-40:]!r}, {req.continuation!r}) gives {len(ctx)} context and "
            f"{len(cont)} continuation tokens; both must be > 0"
        )
    cut = 0 if window is None else max(0, len(ctx) + len(cont) - 1 - window)
    if cut and len(cont) > window:  # type: ignore[operator]
        raise LlmassayError(
            f"continuation {req.continuation[:40]!r} is {len(cont)} tokens, more than the "
            f"context window of {window}"
        )
    return EncodedPair(tuple(ctx[cut:]), tuple(cont), cut)


def score_continuation(
    logits: np.ndarray, continuation: Sequence[int], n_context_tokens: int, n_truncated: int = 0
) -> LoglikelihoodResult:
    """`logits[i]` predicts `continuation[i]`; returns summed log-probabilities (float64)."""
    rows = np.asarray(logits, dtype=np.float64)
    top = rows.max(axis=1, keepdims=True)
    log_norm = top[:, 0] + np.log(np.exp(rows - top).sum(axis=1))
    idx = np.asarray(continuation)
    token_logprobs = rows[np.arange(len(idx)), idx] - log_norm
    greedy = bool((rows.argmax(axis=1) == idx).all())
    return LoglikelihoodResult(
        logprob=float(token_logprobs.sum()),
        is_greedy=greedy,
        n_tokens=len(idx),
        n_context_tokens=n_context_tokens,
        token_logprobs=tuple(float(x) for x in token_logprobs),
        n_truncated_tokens=n_truncated,
    )
