"""Vectorised MinHash signatures over word shingles, bit-compatible with datasketch.

datasketch's own `MinHash.update_batch` calls a Python hash function per shingle; here a
batch of documents is hashed at once with numpy: word hashes (cached) → shingle hashes (a
polynomial over k word hashes, folded to 32 bits) → datasketch's `affine32` permutations
(MurmurHash3 fmix32 pre-mix, then a·h + b mod 2^32 with the permutation parameters taken
from `datasketch.MinHash(num_perm, seed)`) → a per-document minimum. The result equals
`MinHash(num_perm, seed, hashfunc=<our shingle hash>).update_batch(shingles)` value for
value (tested), so signatures can be handed to datasketch's `LeanMinHash`/`MinHashLSH`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from llmassay.audit.normalise import ngram_hashes, word_hashes

_U32 = np.uint32
_EMPTY = np.uint32(0xFFFFFFFF)
CHUNK_ELEMENTS = 4_000_000  # shingles × permutations per numpy step (16 MB of uint32)


@dataclass(frozen=True)
class MinHashParams:
    num_perm: int = 128
    seed: int = 1
    shingle: int = 5  # words per shingle

    def permutations(self) -> tuple[np.ndarray, np.ndarray]:
        """datasketch's own parameters for this (num_perm, seed), so signatures stay compatible."""
        from datasketch import MinHash

        a, b = MinHash(num_perm=self.num_perm, seed=self.seed, scheme="affine32").permutations
        return np.asarray(a, dtype=_U32), np.asarray(b, dtype=_U32)


def fmix32(h: np.ndarray) -> np.ndarray:
    """MurmurHash3's 32-bit finaliser (the pre-mix datasketch applies in its affine32 scheme)."""
    h = h ^ (h >> _U32(16))
    h = h * _U32(0x85EBCA6B)
    h = h ^ (h >> _U32(13))
    h = h * _U32(0xC2B2AE35)
    return h ^ (h >> _U32(16))


def fold32(h64: np.ndarray) -> np.ndarray:
    return ((h64 >> np.uint64(32)) ^ h64).astype(_U32)


def shingle_hashes(word_hashes: np.ndarray, k: int) -> np.ndarray:
    """32-bit hashes of a document's k-word shingles; a document shorter than k words is
    one shingle of all its words (so short documents still get a signature)."""
    n = min(k, len(word_hashes))
    return fold32(ngram_hashes(word_hashes, n))


def shingle_set(normalised: str, k: int) -> np.ndarray:
    """The sorted unique 64-bit hashes of a normalised document's shingles, as the signature
    sees them (a document shorter than k words is one shingle): what exact verification
    compares. Two distinct shingles share a hash with probability ≈ 2^-64."""
    wh = word_hashes(normalised) if normalised else np.empty(0, dtype=np.uint64)
    return np.unique(ngram_hashes(wh, min(k, len(wh)))) if len(wh) else np.empty(0, dtype=np.uint64)


class SignatureBuilder:
    """Signatures for batches of normalised documents, with numpy work per batch, not per document."""

    def __init__(self, params: MinHashParams) -> None:
        self.params = params
        a, b = params.permutations()
        self._a, self._b = a[:, None], b[:, None]  # (num_perm, 1): reductions run along contiguous rows

    def shingles(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """fmix32-mixed shingle hashes of all documents, concatenated, and the count per document."""
        k = self.params.shingle
        lengths = np.array([t.count(" ") + 1 if t else 0 for t in texts], dtype=np.int64)
        counts = np.where(lengths >= k, lengths - k + 1, np.minimum(lengths, 1))
        total = int(counts.sum())
        if total == 0:
            return np.empty(0, dtype=_U32), counts
        wh = word_hashes(" ".join(t for t in texts if t))
        tok_start = np.concatenate(([0], np.cumsum(lengths)[:-1]))
        sh_start = np.concatenate(([0], np.cumsum(counts)[:-1]))
        grams = ngram_hashes(wh, k)
        doc_of = np.repeat(np.arange(len(texts)), counts)
        src = tok_start[doc_of] + np.arange(total) - sh_start[doc_of]
        hashes = grams[np.minimum(src, len(grams) - 1)] if len(grams) else np.zeros(total, dtype=np.uint64)
        for d in np.flatnonzero((lengths > 0) & (lengths < k)).tolist():  # short documents: one shingle
            hashes[sh_start[d]] = ngram_hashes(wh[tok_start[d] : tok_start[d] + lengths[d]], int(lengths[d]))[0]
        return fmix32(fold32(hashes)), counts

    def signatures(self, texts: list[str]) -> np.ndarray:
        """(len(texts), num_perm) uint32 for normalised texts; an empty one gets all 0xFFFFFFFF."""
        perm = self.params.num_perm
        out = np.full((len(texts), perm), _EMPTY, dtype=_U32)
        hashes, counts = self.shingles(texts)
        owners = np.flatnonzero(counts)
        if not len(owners):
            return out
        ends = np.cumsum(counts[owners])
        starts = ends - counts[owners]
        step = max(1, CHUNK_ELEMENTS // perm)
        first = 0
        while first < len(owners):  # whole documents per chunk: each minimum is one reduceat segment
            last = max(first + 1, int(np.searchsorted(ends, starts[first] + step, side="right")))
            lo, hi = int(starts[first]), int(ends[last - 1])
            phv = self._a * hashes[None, lo:hi]
            phv += self._b
            out[owners[first:last]] = np.minimum.reduceat(phv, starts[first:last] - lo, axis=1).T
            first = last
        return out


def jaccard_estimate(sig_a: np.ndarray, sig_b: np.ndarray) -> np.ndarray:
    """Row-wise share of equal signature values (datasketch's `MinHash.jaccard`)."""
    return (sig_a == sig_b).mean(axis=-1)
