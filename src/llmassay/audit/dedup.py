"""Exact and near-duplicate documents: normalised-text hashes, then MinHash LSH.

Every document's signature is computed while the corpus streams (see `minhash.py`);
the LSH step runs afterwards on the signature matrix, vectorised: per band, rows with
equal band hashes are found by sorting, and each candidate pair is verified, so a band
collision alone never counts. `verify="exact"` (the default) computes the candidates' true
Jaccard from their shingle sets in a second pass over the corpus; `verify="estimate"` uses
the MinHash estimate, which for a pair exactly at the threshold is below it about half the
time (a binomial share of 128 permutations), so recall just above the threshold is ≈ 50-80 %.
Documents whose normalised text is identical are exact duplicates and enter the LSH once.

Bands and rows are chosen so that a pair exactly at the threshold becomes a candidate
with probability ≥ 0.99 (datasketch's default, 9 × 13 at 0.8, catches it ≈ 40 % of the
time); the S-curve is reported so that choice is visible.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from llmassay.audit.minhash import MinHashParams, jaccard_estimate
from llmassay.audit.normalise import Normalisation, HASH_COEFFS
from llmassay.types import LlmassayError

MAX_BUCKET = 256  # a band bucket larger than this pairs each member with its first 256 neighbours only
S_CURVE_POINTS = (0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95, 1.0)
VERIFY_MODES = ("exact", "estimate")
# Jaccard buckets for recall reports: fine around the usual 0.8 threshold, where the
# estimate's verification loses pairs.
JACCARD_BUCKETS = ((0.0, 0.5), (0.5, 0.6), (0.6, 0.7), (0.7, 0.75), (0.75, 0.8), (0.8, 0.85), (0.85, 0.9),
                   (0.9, 1.0), (1.0, 1.0))


@dataclass(frozen=True)
class DedupSettings:
    threshold: float = 0.8
    num_perm: int = 128
    shingle: int = 5
    seed: int = 1
    bands: int | None = None  # None: choose_bands(threshold, num_perm)
    verify: str = "exact"  # "exact": true Jaccard of the candidates' shingle sets; "estimate": MinHash's

    def __post_init__(self) -> None:
        if self.verify not in VERIFY_MODES:
            raise LlmassayError(f"--verify: '{self.verify}' is not one of {', '.join(VERIFY_MODES)}")
        if not 0.0 < self.threshold <= 1.0:
            raise LlmassayError(f"--threshold: {self.threshold} must be in (0, 1]")
        if not 2 <= self.num_perm <= 4096:
            raise LlmassayError(f"--num-perm: {self.num_perm} must be between 2 and 4096")
        if not 1 <= self.shingle <= 64:
            raise LlmassayError(f"--shingle: {self.shingle} must be between 1 and 64 words")
        if self.bands is not None and not 1 <= self.bands <= self.num_perm:
            raise LlmassayError(f"--bands: {self.bands} must be between 1 and --num-perm ({self.num_perm})")

    @property
    def minhash(self) -> MinHashParams:
        return MinHashParams(self.num_perm, self.seed, self.shingle)

    def band_layout(self) -> tuple[int, int]:
        if self.bands is not None:
            return self.bands, self.num_perm // self.bands
        return choose_bands(self.threshold, self.num_perm)


def candidate_probability(j: float, bands: int, rows: int) -> float:
    """P(a pair with Jaccard j shares at least one band) = 1 - (1 - j^rows)^bands."""
    return 1.0 - (1.0 - j**rows) ** bands


def choose_bands(threshold: float, num_perm: int, target: float = 0.99) -> tuple[int, int]:
    """The most rows per band (fewest false candidates) that still make a pair at the
    threshold a candidate with probability ≥ target."""
    best = (num_perm, 1)
    for rows in range(1, num_perm + 1):
        bands = num_perm // rows
        if bands < 1:
            break
        if candidate_probability(threshold, bands, rows) >= target:
            best = (bands, rows)
    return best


@dataclass
class DedupResult:
    settings: DedupSettings
    bands: int
    rows: int
    docs: int
    empty: int
    exact_duplicates: int  # documents whose normalised text appeared before
    near_duplicates: int  # further documents removed because a near-duplicate is kept
    kept: int
    clusters: list[list[int]]  # doc indexes, first = the one kept; only clusters of size ≥ 2
    pairs: np.ndarray  # (m, 2) verified near-duplicate pairs (representatives), lo < hi
    pair_estimates: np.ndarray  # their MinHash Jaccard estimates
    candidates: int  # LSH candidate pairs before verification
    pair_jaccard: np.ndarray = field(default_factory=lambda: np.empty(0))  # their exact Jaccard (verify="exact")
    keep: np.ndarray = field(repr=False, default_factory=lambda: np.empty(0, dtype=bool))
    exact_of: np.ndarray = field(
        repr=False, default_factory=lambda: np.empty(0, dtype=np.int64)
    )  # first doc with the same text

    def summary(self) -> dict[str, Any]:
        return {
            "docs": self.docs,
            "empty_docs": self.empty,
            "exact_duplicate_docs": self.exact_duplicates,
            "near_duplicate_docs": self.near_duplicates,
            "kept_docs": self.kept,
            "clusters": len(self.clusters),
            "lsh_candidate_pairs": self.candidates,
            "verified_pairs": int(len(self.pairs)),
        }

    def settings_dict(self) -> dict[str, Any]:
        return {
            **asdict(self.settings),
            "bands": self.bands,
            "rows": self.rows,
            "verification": "exact Jaccard of the candidates' shingle sets (64-bit hashes) >= threshold"
            if self.settings.verify == "exact"
            else "MinHash Jaccard estimate >= threshold",
            "shingles": f"word {self.settings.shingle}-grams of normalised text",
            "s_curve": {str(j): round(candidate_probability(j, self.bands, self.rows), 4) for j in S_CURVE_POINTS},
            "normalisation": Normalisation().as_dict(),
        }


def band_hashes(sigs: np.ndarray, band: int, rows: int) -> np.ndarray:
    block = sigs[:, band * rows : (band + 1) * rows].astype(np.uint64)
    out = np.zeros(len(sigs), dtype=np.uint64)
    for j in range(rows):
        out += block[:, j] * HASH_COEFFS[j % len(HASH_COEFFS)] + np.uint64(j)
    return out


def candidate_pairs(sigs: np.ndarray, bands: int, rows: int) -> np.ndarray:
    """Unique (lo, hi) row pairs sharing at least one band, as an (m, 2) int64 array."""
    n = len(sigs)
    codes: list[np.ndarray] = []
    for band in range(bands):
        keys = band_hashes(sigs, band, rows)
        order = np.argsort(keys, kind="stable")
        sorted_keys = keys[order]
        for d in range(1, MAX_BUCKET + 1):
            same = np.flatnonzero(sorted_keys[d:] == sorted_keys[:-d])
            if not len(same):
                break
            lo, hi = order[same], order[same + d]
            codes.append(np.minimum(lo, hi).astype(np.int64) * n + np.maximum(lo, hi))
        if codes and sum(len(c) for c in codes) > 4_000_000:
            codes = [np.unique(np.concatenate(codes))]
    if not codes:
        return np.empty((0, 2), dtype=np.int64)
    unique = np.unique(np.concatenate(codes))
    return np.stack([unique // n, unique % n], axis=1)


def minhash_estimates(sigs: np.ndarray, pairs: np.ndarray, chunk: int = 65536) -> np.ndarray:
    """MinHash Jaccard estimate of each (a, b) row pair, in chunks to bound memory."""
    chunks = (pairs[i : i + chunk] for i in range(0, len(pairs), chunk))
    parts = [jaccard_estimate(sigs[p[:, 0]], sigs[p[:, 1]]) for p in chunks]
    return np.concatenate(parts) if parts else np.empty(0)


def verify_pairs(
    sigs: np.ndarray, pairs: np.ndarray, threshold: float, chunk: int = 65536
) -> tuple[np.ndarray, np.ndarray]:
    """Pairs whose MinHash estimate is ≥ threshold, and those estimates."""
    est = minhash_estimates(sigs, pairs, chunk)
    ok = est >= threshold - 1e-12
    return pairs[ok], est[ok]


def exact_jaccard(pairs: np.ndarray, shingle_sets: dict[int, np.ndarray]) -> np.ndarray:
    """Jaccard of each (a, b) pair's sorted unique shingle-hash arrays."""
    out = np.empty(len(pairs))
    for k, (a, b) in enumerate(pairs.tolist()):
        sa, sb = shingle_sets[a], shingle_sets[b]
        inter = len(np.intersect1d(sa, sb, assume_unique=True))
        out[k] = inter / (len(sa) + len(sb) - inter)
    return out


def recall_by_jaccard(
    found: Iterable[tuple[int, int]],
    truth: dict[tuple[int, int], float],
    buckets: tuple[tuple[float, float], ...] = JACCARD_BUCKETS,
) -> dict[str, tuple[float, int]]:
    """Share of the true pairs in each Jaccard bucket [lo, hi) that were found (a bucket with
    lo == hi holds pairs at exactly that value), and how many pairs the bucket has: how a
    threshold's recall falls off near it, which one overall figure hides."""
    got = {tuple(sorted(p)) for p in found}
    out = {}
    for lo, hi in buckets:
        members = [p for p, j in truth.items() if (j == lo if lo == hi else lo <= j < hi)]
        name = f"{lo:g}" if lo == hi else f"{lo:g}-{hi:g}"
        out[name] = (sum(tuple(sorted(p)) in got for p in members) / len(members) if members else float("nan"),
                     len(members))
    return out


def _components(n: int, edges: np.ndarray) -> np.ndarray:
    """Union-find root per node (the smallest index in its component)."""
    parent = np.arange(n)

    def find(x: int) -> int:
        root = x
        while parent[root] != root:
            root = parent[root]
        while parent[x] != root:
            parent[x], x = root, parent[x]
        return root

    for a, b in edges.tolist():
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    return np.array([find(i) for i in range(n)], dtype=np.int64)


def deduplicate(
    sigs: np.ndarray,
    exact_of: np.ndarray,
    empty: np.ndarray,
    settings: DedupSettings,
    jaccard: Callable[[np.ndarray], np.ndarray] | None = None,
) -> DedupResult:
    """Clusters from exact duplicates (`exact_of[i]` = first doc with the same normalised
    text, or i) and verified LSH pairs among the first occurrences. With verify="exact",
    `jaccard` gives the true Jaccard of (m, 2) document pairs (`audit_dedup` reads them
    from the corpus)."""
    n = len(sigs)
    bands, rows = settings.band_layout()
    reps = np.flatnonzero((exact_of == np.arange(n)) & ~empty)
    cand = candidate_pairs(sigs[reps], bands, rows) if len(reps) > 1 else np.empty((0, 2), dtype=np.int64)
    estimates = minhash_estimates(sigs[reps], cand)
    if settings.verify == "exact":
        if jaccard is None:
            raise LlmassayError("--verify exact needs the documents' shingles: run it through audit_dedup")
        scores = jaccard(reps[cand]) if len(cand) else np.empty(0)
    else:
        scores = estimates
    ok = scores >= settings.threshold - 1e-12
    pairs = reps[cand[ok]] if ok.any() else np.empty((0, 2), dtype=np.int64)
    exact_edges = np.stack([np.flatnonzero(exact_of != np.arange(n)), exact_of[exact_of != np.arange(n)]], axis=1)
    roots = _components(n, np.concatenate([pairs.reshape(-1, 2), exact_edges]))
    keep = roots == np.arange(n)
    keep &= ~empty
    groups: dict[int, list[int]] = {}
    for i in np.flatnonzero(roots != np.arange(n)).tolist():
        groups.setdefault(int(roots[i]), [int(roots[i])]).append(i)
    n_exact = int((exact_of != np.arange(n)).sum())
    return DedupResult(
        settings=settings,
        bands=bands,
        rows=rows,
        docs=n,
        empty=int(empty.sum()),
        exact_duplicates=n_exact,
        near_duplicates=int(n - keep.sum() - empty.sum() - n_exact),
        kept=int(keep.sum()),
        clusters=[groups[r] for r in sorted(groups)],
        pairs=pairs,
        pair_estimates=estimates[ok],
        candidates=int(len(cand)),
        pair_jaccard=scores[ok] if settings.verify == "exact" else np.empty(0),
        keep=keep,
        exact_of=exact_of,
    )
