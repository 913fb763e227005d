"""Under-trained ("glitch") tokens, after Magikarp (Land & Bartolo 2024).

1. An indicator per token from the weights alone (higher = more likely under-trained):
   - untied embeddings: the input embedding's L2 norm, negated (rows that training never
     pushed stay near their small initial norm);
   - tied embeddings (both bundled models): cosine between the token's row and the mean
     row of a reference set of tokens known to be unused, both with the matrix's first
     principal component removed (it is shared by all rows and swamps the cosine). The
     reference is the declared unused tokens (`<unusedN>`, Gemma), else the byte tokens
     invalid in UTF-8, each scored against the mean of the *others* (leave-one-out), else
     (SmolLM2 has neither: no unused tokens, no invalid byte tokens, and every token
     round-trips through its tokenizer) the norm, as for untied embeddings.
2. Candidates: the top 2 % of eligible tokens (control tokens and the declared reference
   set are not eligible).
3. Confirmation with repeat prompts: the model is asked to repeat the token; its
   probability of doing so, maximised over the prompts, is the evidence (strong: < 0.001,
   weak: < 0.1, otherwise not confirmed).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

import numpy as np

from llmassay.tokens.gguf_vocab import CONTROL, GGUFVocab

CANDIDATE_SHARE = 0.02
STRONG, WEAK = 1e-3, 0.1
MIN_REFERENCE = 8


@dataclass
class Indicator:
    name: str
    scores: np.ndarray  # per token; higher = more likely under-trained
    reference: str
    reference_ids: list[int]
    eligible: np.ndarray  # bool per token


class RepeatProber(Protocol):
    templates: tuple[str, ...]

    def max_probs(self, token_ids: list[int]) -> list[float]:
        """Per token, the largest probability over the repeat prompts that the model repeats it."""


@dataclass(frozen=True)
class TokenFinding:
    id: int
    token: str
    score: float
    rank: int  # 0 = most suspicious eligible token
    max_prob: float | None = None
    verdict: str = "unchecked"  # strong | weak | not confirmed | unchecked


@dataclass
class GlitchReport:
    model: str
    n_vocab: int
    tied: bool
    indicator: str
    reference: str
    n_reference: int
    n_eligible: int
    n_candidates: int
    checked: list[TokenFinding]
    controls: list[TokenFinding]
    planted: dict[str, Any] = field(default_factory=dict)
    templates: tuple[str, ...] = ()

    def confirmed(self, verdict: str = "strong") -> list[TokenFinding]:
        return [f for f in self.checked if f.verdict == verdict]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def verdict(prob: float) -> str:
    return "strong" if prob < STRONG else "weak" if prob < WEAK else "not confirmed"


def compute_indicator(vocab: GGUFVocab) -> Indicator:
    eligible = np.array([t != CONTROL for t in vocab.types], dtype=bool)
    if not vocab.tied:
        return Indicator("embedding norm (negated)", -_norms(vocab), "none (untied: norm needs no reference)", [], eligible)
    declared = vocab.unused_tokens()
    if len(declared) >= MIN_REFERENCE:
        reference, name, leave_one_out = declared, f"declared unused tokens ({len(declared)})", False
        eligible[declared] = False
    else:
        reference = vocab.invalid_utf8_tokens()
        name, leave_one_out = f"byte tokens invalid in UTF-8 ({len(reference)}, leave-one-out)", True
    if len(reference) < MIN_REFERENCE:
        # No known-unused tokens to compare with (SmolLM2 declares none and has no invalid
        # byte tokens): the norm is the indicator left; repeat prompts decide.
        norms = _norms(vocab)
        return Indicator("embedding norm (negated; tied, no unused reference)", -norms, "none found", [], eligible)
    pc = _first_component(vocab)
    from gguf.quants import dequantize

    data = vocab.embedding.data
    ref_rows = _remove(np.asarray(dequantize(data[reference], vocab.embedding.tensor_type), dtype=np.float64), pc)
    ref_sum = ref_rows.sum(axis=0)
    scores = np.concatenate([_cosine(_remove(rows.astype(np.float64), pc), ref_sum / len(reference))
                             for _, rows in vocab.rows(vocab.embedding)])
    if leave_one_out:
        for token, row in zip(reference, ref_rows):
            scores[token] = _cosine(row[None, :], (ref_sum - row) / (len(reference) - 1))[0]
    return Indicator("cosine to unused-token mean, first PC removed", scores, name, list(reference), eligible)


def _norms(vocab: GGUFVocab) -> np.ndarray:
    return np.concatenate([np.linalg.norm(rows, axis=1) for _, rows in vocab.rows(vocab.embedding)])


def _first_component(vocab: GGUFVocab) -> np.ndarray:
    """First principal component of the embedding rows, from streamed sums (float64)."""
    total, outer, n = None, None, 0
    for _, rows in vocab.rows(vocab.embedding):
        r = rows.astype(np.float64)
        total = r.sum(0) if total is None else total + r.sum(0)
        outer = r.T @ r if outer is None else outer + r.T @ r
        n += len(r)
    assert total is not None and outer is not None, "a GGUF embedding has at least one row"
    mean = total / n
    cov = outer / n - np.outer(mean, mean)
    _, vecs = np.linalg.eigh(cov)
    return vecs[:, -1]


def _remove(rows: np.ndarray, pc: np.ndarray) -> np.ndarray:
    return rows - np.outer(rows @ pc, pc)


def _cosine(rows: np.ndarray, ref: np.ndarray) -> np.ndarray:
    denom = np.linalg.norm(rows, axis=1) * np.linalg.norm(ref)
    return np.divide(rows @ ref, denom, out=np.zeros(len(rows)), where=denom > 0)


def candidates(ind: Indicator, share: float = CANDIDATE_SHARE) -> list[int]:
    """The top `share` of eligible tokens by indicator, most suspicious first."""
    ids = np.flatnonzero(ind.eligible)
    k = max(1, math.ceil(share * len(ids)))
    order = ids[np.argsort(-ind.scores[ids], kind="stable")]
    return [int(i) for i in order[:k]]


def frequent_tokens(encode: Callable[[str], list[int]], texts: Iterable[str], n: int = 20) -> list[int]:
    """The `n` tokens most frequent in `texts` under the model's tokenizer: tokens training
    certainly saw, the negative control (none may be flagged)."""
    counts = Counter(t for text in texts for t in encode(text))
    return [t for t, _ in counts.most_common(n)]


def find_glitch_tokens(
    vocab: GGUFVocab,
    prober: RepeatProber | None,
    max_confirm: int = 100,
    n_controls: int = 20,
    frequent: Sequence[int] = (),
    seed: int = 0,
    share: float = CANDIDATE_SHARE,
) -> GlitchReport:
    """Indicator → candidates → repeat-prompt confirmation of the `max_confirm` most
    suspicious, and of `n_controls` random eligible non-candidates (what the test gives
    on ordinary tokens). Planted checks: where the invalid-UTF-8 byte tokens and the
    frequent tokens land."""
    ind = compute_indicator(vocab)
    cand = candidates(ind, share)
    rank = {t: r for r, t in enumerate(cand)}
    order = np.argsort(-np.where(ind.eligible, ind.scores, -np.inf), kind="stable")
    position = np.empty(len(order), dtype=int)
    position[order] = np.arange(len(order))

    pool = np.setdiff1d(np.flatnonzero(ind.eligible), cand)
    picks = np.random.default_rng(seed).choice(pool, size=min(n_controls, len(pool)), replace=False) if len(pool) else np.array([], dtype=int)
    checked_ids, control_ids = cand[:max_confirm], [int(t) for t in sorted(picks)]
    invalid = vocab.invalid_utf8_tokens()
    asked = checked_ids + control_ids + invalid
    probs = prober.max_probs(asked) if prober is not None else [None] * len(asked)
    findings = [TokenFinding(t, vocab.display(t), float(ind.scores[t]), int(position[t]), p,
                             "unchecked" if p is None else verdict(p))
                for t, p in zip(asked, probs)]
    checked, controls = findings[:len(checked_ids)], findings[len(checked_ids):len(checked_ids) + len(control_ids)]
    n_eligible = int(ind.eligible.sum())
    planted = {
        "invalid_utf8_tokens": len(invalid),
        "invalid_utf8_flagged": sum(t in rank for t in invalid),
        "invalid_utf8_worst_percentile": _percentile(invalid, position, n_eligible),
        "frequent_tokens": len(frequent),
        "frequent_flagged": sum(t in rank for t in frequent),
        "frequent_best_percentile": min((float(position[t]) / n_eligible for t in frequent), default=None),
        "invalid_utf8_verdicts": dict(Counter(f.verdict for f in findings[len(checked_ids) + len(control_ids):])),
    }
    # The negative control: an indicator that makes frequent tokens candidates does not
    # separate under-trained tokens in this model, whatever the repeat prompts then say.
    planted["frequent_not_flagged"] = planted["frequent_flagged"] == 0 if frequent else None
    return GlitchReport(
        str(vocab.path.name), vocab.n_vocab, vocab.tied, ind.name, ind.reference, len(ind.reference_ids), n_eligible,
        len(cand), checked, controls, planted, tuple(prober.templates) if prober is not None else (),
    )


def _percentile(tokens: Sequence[int], position: np.ndarray, n: int) -> float | None:
    """The least suspicious of `tokens` as a share of the ranking (0 = top)."""
    return max((float(position[t]) / n for t in tokens), default=None)
