"""Tokenizer probes that need no task: what a language costs in tokens (`premium`) and
which vocabulary entries the model barely learned (`glitch`)."""

from llmassay.tokens.parallel import ParallelText, bundled_parallel, country_names, read_parallel
from llmassay.tokens.premium import LanguageCost, PremiumTable, measure_premium

__all__ = [
    "LanguageCost",
    "ParallelText",
    "PremiumTable",
    "bundled_parallel",
    "country_names",
    "measure_premium",
    "read_parallel",
]
