"""Seeded token-level edits a detector must survive: substitution, deletion and
copy-paste mixing into human text (MarkLLM's word-level attacks, at the token level so
they need no tokenizer round trip). Paraphrase needs a model: the probe asks it."""

from __future__ import annotations

import numpy as np


def substitute(ids: list[int], share: float, n_vocab: int, seed: int) -> list[int]:
    """Replace round(share * len) tokens, at random positions, by random vocabulary ids."""
    rng = np.random.default_rng(seed)
    out = np.asarray(ids, dtype=np.int64).copy()
    k = round(share * len(out))
    where = rng.choice(len(out), size=k, replace=False)
    out[where] = rng.integers(0, n_vocab, size=k)
    return out.tolist()


def delete(ids: list[int], share: float, seed: int) -> list[int]:
    """Drop round(share * len) tokens at random positions."""
    rng = np.random.default_rng(seed)
    keep = np.ones(len(ids), dtype=bool)
    keep[rng.choice(len(ids), size=round(share * len(ids)), replace=False)] = False
    return [t for t, k in zip(ids, keep) if k]


def mix(marked: list[int], human: list[int], share: float, seed: int) -> list[int]:
    """A text of len(marked) tokens whose first `share` comes from the watermarked text,
    pasted at a random place into a span of human text that makes up the rest."""
    n = len(marked)
    n_marked = round(share * n)
    n_human = n - n_marked
    rng = np.random.default_rng(seed)
    start = int(rng.integers(0, max(1, len(human) - n_human)))
    span = human[start : start + n_human]
    at = int(rng.integers(0, len(span) + 1))
    return span[:at] + marked[:n_marked] + span[at:]
