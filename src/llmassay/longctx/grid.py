"""The length × depth grid, the model's context window, and the effective context length."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from llmassay.metrics import bootstrap_mean
from llmassay.types import LlmassayError, Metric

BASE_LENGTH = 256  # RULER starts at 4K and lm-eval's RULER hangs below 4096 (#2963): we start here
EFFECTIVE_RATIO = 0.85  # of the base length's accuracy, as the issue (and RULER's spirit) defines it


@dataclass(frozen=True)
class Window:
    """How many tokens the loaded model holds (`loaded`, e.g. llama.cpp's n_ctx) and how
    many it was trained for (`trained`, from GGUF metadata or the HF config); None: unknown."""

    loaded: int | None
    trained: int | None

    def as_dict(self) -> dict[str, Any]:
        return {"loaded": self.loaded, "trained": self.trained}


def context_window(backend: Any) -> Window:
    """Read the window from whatever the backend exposes (duck-typed: llama.cpp's `llm`,
    a transformers `model.config`); a scripted or remote backend gives None."""
    llm = getattr(backend, "llm", None)
    if llm is not None and callable(getattr(llm, "n_ctx", None)):
        trained = next((int(v) for k, v in (getattr(llm, "metadata", None) or {}).items()
                        if k.endswith(".context_length") and str(v).isdigit()), None)
        return Window(int(llm.n_ctx()), trained)
    config = getattr(getattr(backend, "model", None), "config", None)
    trained = getattr(config, "max_position_embeddings", None) if config is not None else None
    return Window(int(trained) if isinstance(trained, int) else None, trained if isinstance(trained, int) else None)


def parse_lengths(values: Sequence[str], where: str = "-P needle.lengths") -> tuple[int, ...]:
    try:
        lengths = tuple(sorted({int(v) for v in values}))
    except ValueError:
        raise LlmassayError(f"{where}: {', '.join(values)} are not whole numbers of tokens") from None
    if any(n < 64 for n in lengths):
        raise LlmassayError(f"{where}: lengths must be at least 64 tokens")
    return lengths


def parse_depths(values: Sequence[str], where: str = "-P needle.depths") -> tuple[float, ...]:
    try:
        depths = tuple(sorted({float(v) for v in values}))
    except ValueError:
        raise LlmassayError(f"{where}: {', '.join(values)} are not numbers from 0 to 1") from None
    if not depths or any(not 0.0 <= d <= 1.0 for d in depths):
        raise LlmassayError(f"{where}: depths are shares of the text, from 0 (start) to 1 (end)")
    return depths


def default_lengths(max_len: int) -> tuple[int, ...]:
    """256, 512, 1024, … doubling up to max_len, and max_len itself."""
    out, n = [], BASE_LENGTH
    while n < max_len:
        out.append(n)
        n *= 2
    return tuple(out + [max_len])


def resolve_lengths(given: Sequence[str], max_len: int | None, window: Window) -> tuple[int, ...]:
    """The lengths to run: given ones, or the doubling grid up to max_len / the loaded
    window. A length past the loaded window would be cut by the backend (the needle lost
    to truncation, not to the model), so it is refused with the fix."""
    limit = max_len or window.loaded
    lengths = parse_lengths(given) if given else None
    if lengths is None:
        if limit is None:
            raise LlmassayError("needle: this backend does not tell its context window; give -P needle.max_len or -P needle.lengths")
        lengths = default_lengths(limit)
    if max_len is not None:
        lengths = tuple(n for n in lengths if n <= max_len) or lengths[:1]
    if window.loaded is not None and lengths[-1] > window.loaded:
        raise LlmassayError(
            f"needle: length {lengths[-1]} exceeds the loaded context window of {window.loaded} tokens "
            f"(load the model with --model-args n_ctx={lengths[-1]}"
            + (f"; it was trained for {window.trained})" if window.trained else ")")
        )
    return lengths


def cell_key(length: int, depth: float) -> str:
    return f"{length}@{depth:g}"


@dataclass(frozen=True)
class EffectiveLength:
    metric: Metric  # value and low: the lower-CI rule; high: the point-estimate rule
    base_accuracy: float
    threshold: float
    by_length: dict[int, Metric]


def effective_length(per_item: np.ndarray, lengths: Sequence[int], seed: int = 0,
                     ratio: float = EFFECTIVE_RATIO) -> EffectiveLength:
    """The longest length up to which every length's accuracy has its lower 95 % CI bound at
    or above `ratio` × the shortest length's accuracy.

    `per_item` is items × lengths (each item's accuracy over depths); the CI unit is the
    item. The shortest length is the reference and always counts. The metric's upper end
    applies the same rule to point estimates (what ignoring the uncertainty would claim);
    NaN when the reference accuracy is 0 (nothing to lose, so no length is meaningful).
    """
    per_item = np.asarray(per_item, dtype=float)
    by_length = {n: bootstrap_mean(per_item[:, j], seed=seed) for j, n in enumerate(lengths)}
    base = by_length[lengths[0]].value
    threshold = ratio * base
    n_items = per_item.shape[0]
    if not n_items or not base > 0:
        nan = float("nan")
        return EffectiveLength(Metric(nan, nan, nan, n_items, None, "no accuracy at the base length"), base, threshold, by_length)

    def longest(passes: Sequence[bool]) -> int:
        best = lengths[0]
        for n, ok in zip(lengths[1:], passes[1:]):
            if not ok:
                break
            best = n
        return best

    low = longest([by_length[n].interval()[0] >= threshold - 1e-12 for n in lengths])
    high = longest([by_length[n].value >= threshold - 1e-12 for n in lengths])
    method = f"longest length with lower 95% CI >= {ratio:g} x accuracy at {lengths[0]}; high end: point estimates"
    return EffectiveLength(Metric(float(low), float(low), float(max(low, high)), n_items, None, method), base, threshold, by_length)
