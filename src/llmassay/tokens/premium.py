"""Token premium (Petrov et al. 2023): what the same content costs per language.

premium_L = Σ|t(s_L)| / Σ|t(s_EN)| over the items that hold both L and English (a ratio of
sums, as Petrov's corpus-level figure), with a percentile bootstrap over items. Also tokens
per character and per word (not for languages written without spaces), and the cost of
1,000 characters of the language: tokens, seconds at a given generation speed, and money
at a given price per million tokens.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from llmassay.metrics import bootstrap_statistic
from llmassay.tokens.parallel import ENGLISH, NO_WORD_SPACES, ParallelText
from llmassay.tokens.tokenizers import Tokenizer
from llmassay.types import Metric


@dataclass(frozen=True)
class LanguageCost:
    """One language under one tokenizer."""

    tokenizer: str
    source: str
    language: str
    n_items: int
    tokens: int
    characters: int
    tokens_per_char: Metric
    tokens_per_word: Metric | None
    premium: Metric  # vs English on the same items; English itself is 1
    tokens_per_1k_chars: float
    seconds_per_1k_chars: float | None
    cost_per_1k_chars: float | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class PremiumTable:
    source: str
    rows: list[LanguageCost]
    tokens_per_second: float | None = None
    price_per_mtok: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"source": self.source, "tokens_per_second": self.tokens_per_second,
                "price_per_mtok": self.price_per_mtok, "rows": [r.as_dict() for r in self.rows]}


def _no_ci(m: Metric) -> Metric:
    return Metric(m.value, float("nan"), float("nan"), m.n, None, "single item: no CI")


def _ratio(matrix: np.ndarray) -> float:
    return float(matrix[:, 0].sum() / matrix[:, 1].sum())


def measure_premium(
    text: ParallelText,
    tokenizers: list[Tokenizer],
    tokens_per_second: float | None = None,
    price_per_mtok: float | None = None,
    seed: int = 0,
) -> PremiumTable:
    """Every (tokenizer, language) of `text`; languages with no English partner are skipped."""
    rows = []
    for tok in tokenizers:
        counts = [{lang: len(tok.encode(s)) for lang, s in item.items()} for item in text.items]
        for lang in text.languages:
            both = [i for i, item in enumerate(text.items) if lang in item and ENGLISH in item]
            if not both:
                continue
            n_tok = np.array([counts[i][lang] for i in both], dtype=float)
            n_en = np.array([counts[i][ENGLISH] for i in both], dtype=float)
            chars = np.array([len(text.items[i][lang]) for i in both], dtype=float)
            words = np.array([len(text.items[i][lang].split()) for i in both], dtype=float)
            per_char = bootstrap_statistic(np.column_stack([n_tok, chars]), _ratio, seed)
            per_word = None if lang in NO_WORD_SPACES else bootstrap_statistic(np.column_stack([n_tok, words]), _ratio, seed)
            premium = bootstrap_statistic(np.column_stack([n_tok, n_en]), _ratio, seed)
            if len(both) < 2:  # one item: a value, but no interval to speak of
                per_char, premium = _no_ci(per_char), _no_ci(premium)
                per_word = None if per_word is None else _no_ci(per_word)
            per_1k = 1000 * per_char.value
            rows.append(LanguageCost(
                tok.spec, text.name, lang, len(both), int(n_tok.sum()), int(chars.sum()), per_char, per_word, premium,
                per_1k,
                per_1k / tokens_per_second if tokens_per_second else None,
                per_1k * price_per_mtok / 1e6 if price_per_mtok is not None else None,
            ))
    return PremiumTable(text.name, rows, tokens_per_second, price_per_mtok)
