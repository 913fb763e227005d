"""Text normalisation shared by every audit, as in GPT-3 (appendix C) and Dodge et al. 2021:
lowercase, punctuation replaced by a space, whitespace collapsed, words split on whitespace.

Replacing punctuation by a space (rather than deleting it) keeps "state-of-the-art" and
"state of the art" the same words. The settings are recorded in every audit's output.
"""

from __future__ import annotations

import hashlib
import unicodedata
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np


class _PunctuationTable(dict):
    """str.translate table: every Unicode punctuation character (categories P*) → space.
    Filled on demand (a character's category is looked up once), so no process pays for
    scanning all 1.1 M code points up front."""

    def __missing__(self, cp: int) -> int | str:
        value: int | str = " " if unicodedata.category(chr(cp)).startswith("P") else cp
        self[cp] = value
        return value


_PUNCT = _PunctuationTable()


@dataclass(frozen=True)
class Normalisation:
    """What `normalise` does; written into each report so numbers can be reproduced."""

    lowercase: bool = True
    strip_punctuation: bool = True  # Unicode category P* → space
    collapse_whitespace: bool = True
    tokeniser: str = "whitespace"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def words(text: str) -> list[str]:
    """The normalised words of a text."""
    return text.translate(_PUNCT).lower().split()


def normalise(text: str) -> str:
    """Lowercased, punctuation-free text with single spaces (Dodge et al.'s exact-match form)."""
    return " ".join(words(text))


_MOD = 1 << 64
_BASE = 0x100000001B3  # odd, so invertible mod 2^64
_BASE_INV = pow(_BASE, -1, _MOD)
_powers = np.ones(1, dtype=np.uint64)
_inverse_powers = np.ones(1, dtype=np.uint64)


def _power_tables(n: int) -> tuple[np.ndarray, np.ndarray]:
    """BASE^i and BASE^-i mod 2^64 for i < n, grown by doubling and kept."""
    global _powers, _inverse_powers
    if len(_powers) < n:
        size = max(n, 2 * len(_powers), 1 << 16)
        _powers = np.cumprod(np.full(size, _BASE, dtype=np.uint64)) * np.uint64(_BASE_INV)  # wraps mod 2^64
        _inverse_powers = np.cumprod(np.full(size, _BASE_INV, dtype=np.uint64)) * np.uint64(_BASE)
    return _powers[:n], _inverse_powers[:n]


def fmix64(h: np.ndarray) -> np.ndarray:
    """MurmurHash3's 64-bit finaliser: every input bit reaches every output bit."""
    h = h ^ (h >> np.uint64(33))
    h = h * np.uint64(0xFF51AFD7ED558CCD)
    h = h ^ (h >> np.uint64(33))
    h = h * np.uint64(0xC4CEB9FE1A85EC53)
    return h ^ (h >> np.uint64(33))


def word_hashes(text: str) -> np.ndarray:
    """Stable 64-bit hash of every space-separated word of a normalised text, vectorised over
    its UTF-8 bytes: a polynomial hash per word from prefix sums (BASE is odd, hence
    invertible mod 2^64), then fmix64. No per-word Python work and no cache; stable across
    processes (Python's own `hash` is not), so Ray workers agree with the driver."""
    data = np.frombuffer(text.encode("utf-8", "surrogatepass"), dtype=np.uint8)
    if not len(data):
        return np.empty(0, dtype=np.uint64)
    space = data == 32
    word = ~space
    starts = np.flatnonzero(word & np.concatenate(([True], space[:-1])))
    ends = np.flatnonzero(word & np.concatenate((space[1:], [True]))) + 1
    powers, inverse = _power_tables(len(data) + 1)
    prefix = np.empty(len(data) + 1, dtype=np.uint64)
    prefix[0] = 0
    np.cumsum((data.astype(np.uint64) + np.uint64(1)) * powers[: len(data)], out=prefix[1:])
    h = (prefix[ends] - prefix[starts]) * inverse[starts]
    return fmix64(h + (ends - starts).astype(np.uint64))


# Odd 64-bit multipliers for the n-gram polynomial hash (fixed: hashes must be stable).
HASH_COEFFS = np.random.default_rng(0x11A55A7).integers(1, 2**63, size=64, dtype=np.uint64) * np.uint64(2) + np.uint64(
    1
)


def ngram_hashes(word_hashes: np.ndarray, n: int) -> np.ndarray:
    """64-bit hash of every window of n consecutive words (len - n + 1 values), vectorised:
    sum of word_hash[i + j] * C_j, wrapping mod 2^64."""
    if n > len(HASH_COEFFS):
        raise ValueError(f"n-grams longer than {len(HASH_COEFFS)} words are not supported")
    count = len(word_hashes) - n + 1
    if count <= 0:
        return np.empty(0, dtype=np.uint64)
    out = word_hashes[:count] * HASH_COEFFS[0]
    for j in range(1, n):
        out += word_hashes[j : j + count] * HASH_COEFFS[j]
    return out


def text_hash(normalised: str) -> int:
    """64-bit hash of a normalised text, for exact-duplicate detection."""
    return int.from_bytes(
        hashlib.blake2b(normalised.encode("utf-8", "surrogatepass"), digest_size=8).digest(), "little"
    )
