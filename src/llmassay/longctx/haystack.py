"""Haystacks measured in the model's own tokens, with needles placed at chosen depths.

A haystack is whole sentences of filler prose taken from the start of one text, so every
haystack of a run shares its beginning with every other: a backend that keeps the KV
cache of a common prefix (llama.cpp) prefills that beginning once for all depths, lengths
and questions. Lengths are counted with the backend's tokenizer (`tokenize(text)`), so
"1024" means 1024 of this model's tokens, not characters or words.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
from importlib import resources
from pathlib import Path

from llmassay.types import LlmassayError

Tokenize = Callable[[str], list[int]]

_SENTENCE = re.compile(r"[^.!?]+(?:[.!?]+[\"')\]]*|$)")
_SPACES = re.compile(r"\s+")
BUNDLED_FILLER = "news_from_nowhere.txt"  # William Morris, 1890; public domain (data/ATTRIBUTION.md)
FIT_ROUNDS = 4  # corrections of the sentence count against the real token count


def bundled_filler() -> str:
    return (resources.files("llmassay.longctx") / "data" / BUNDLED_FILLER).read_text(encoding="utf-8")


def read_filler(path: str | Path | None) -> str:
    """The filler text: the bundled prose, or a user's file (one-line error when unusable)."""
    if path is None or str(path) == "":
        return bundled_filler()
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise LlmassayError(f"-P needle.haystack: cannot read {file}: {exc.__class__.__name__}: {exc}") from None
    if len(split_sentences(text)) < 2:
        raise LlmassayError(f"-P needle.haystack: {file} holds fewer than two sentences of text")
    return text


def split_sentences(text: str) -> list[str]:
    """Sentences with their whitespace collapsed: line breaks of the source do not count."""
    flat = _SPACES.sub(" ", text).strip()
    return [s.strip() for s in _SENTENCE.findall(flat) if s.strip()]


@dataclass(frozen=True)
class Placed:
    """A needle text and the depth (0 = first, 1 = last) at which it goes."""

    text: str
    depth: float


class Filler:
    """The filler's sentences and their cumulative token counts under one tokenizer."""

    def __init__(self, text: str, tokenize: Tokenize) -> None:
        self.sentences = split_sentences(text)
        self._tokenize = tokenize
        self._base = len(tokenize(""))  # a BOS the tokenizer adds to every call
        self._cumulative: list[int] = [0]

    def tokens(self, text: str) -> int:
        return len(self._tokenize(text)) - self._base

    def _estimate(self, n_sentences: int) -> int:
        """Tokens of the first n sentences, summed sentence by sentence (close to, not
        exactly, the tokens of their concatenation); computed lazily, once."""
        while len(self._cumulative) <= n_sentences:
            i = len(self._cumulative) - 1
            if i >= len(self.sentences):
                raise LlmassayError(
                    f"haystack filler too short: {len(self.sentences)} sentences hold "
                    f"{self._cumulative[-1]} tokens; give a longer text with -P needle.haystack"
                )
            self._cumulative.append(self._cumulative[-1] + self.tokens(" " + self.sentences[i]))
        return self._cumulative[n_sentences]

    def count_for(self, budget: int) -> int:
        """How many leading sentences fit in `budget` tokens by the running estimate."""
        n = 0
        while self._estimate(n + 1) <= budget:
            n += 1
        return n

    @cached_property
    def mean_sentence_tokens(self) -> float:
        n = min(len(self.sentences), 50)
        return max(1.0, self._estimate(n) / max(1, n))

    def sentence_depths(self, n: int) -> list[float]:
        """Depth of each boundary between the first n sentences: boundary j (before
        sentence j) sits at the share of their tokens that comes before it."""
        total = max(1, self._estimate(n))
        return [self._estimate(j) / total for j in range(n + 1)]


def assemble(sentences: Sequence[str], depths: Sequence[float], needles: Sequence[Placed]) -> str:
    """The sentences with each needle inserted at the boundary nearest its depth (needles
    for the same boundary keep their given order)."""
    slots: dict[int, list[str]] = {}
    for needle in needles:
        j = nearest_boundary(depths, needle.depth)
        slots.setdefault(j, []).append(needle.text)
    parts: list[str] = []
    for j in range(len(sentences) + 1):
        parts += slots.get(j, [])
        if j < len(sentences):
            parts.append(sentences[j])
    return " ".join(parts)


def nearest_boundary(depths: Sequence[float], depth: float) -> int:
    i = bisect.bisect_left(depths, depth)
    if i == 0:
        return 0
    if i >= len(depths):
        return len(depths) - 1
    return i if depths[i] - depth < depth - depths[i - 1] else i - 1


@dataclass(frozen=True)
class Haystack:
    text: str  # filler with the needles in it
    n_sentences: int
    needle_depth: float = 0.0  # where the first needle landed: whole sentences make depths coarse at short lengths


def build_haystack(
    filler: Filler, needles: Sequence[Placed], budget: int, measure: Callable[[str], int]
) -> Haystack:
    """Filler sentences plus needles whose whole prompt, as `measure(haystack)` counts it in
    tokens, is as close to `budget` as whole sentences allow without going over.

    The sentence count starts from the per-sentence estimate and is corrected against the
    real count a few times (tokens at sentence joins differ slightly from the sum).
    """
    n = filler.count_for(max(0, budget - measure("")))
    best: Haystack | None = None
    for _ in range(FIT_ROUNDS):
        text = assemble(filler.sentences[:n], filler.sentence_depths(n), needles)
        size = measure(text)
        if size <= budget:
            if best is None or n > best.n_sentences:
                best = Haystack(text, n)
            step = int((budget - size) // filler.mean_sentence_tokens)
            if step == 0 or (best.n_sentences > n):
                break
            n += step
        else:
            n -= max(1, int(-(-(size - budget) // filler.mean_sentence_tokens)))
        if n < 0:
            break
    for n in range(min(n, len(filler.sentences)), -1, -1):  # the estimate kept overshooting
        if best is not None:
            break
        text = assemble(filler.sentences[:n], filler.sentence_depths(n), needles)
        if measure(text) <= budget:
            best = Haystack(text, n)
    if best is None:
        raise LlmassayError(f"a context of {budget} tokens cannot hold the question and its needles")
    depths = filler.sentence_depths(best.n_sentences)
    landed = depths[nearest_boundary(depths, needles[0].depth)] if needles else 0.0
    return Haystack(best.text, best.n_sentences, landed)
