"""Repeat prompts through llama.cpp: the probability that the model writes the token back.

The token goes into the prompt by id (a glitch token may have no text that re-tokenises
to it, e.g. a lone invalid byte). The shared prefix is evaluated once per template; each
token then costs only its suffix (the KV cache is cut back to the prefix).
"""

from __future__ import annotations

import numpy as np

from llmassay.backends import llama_internals
from llmassay.types import LlmassayError

# (before the token, after it): the next token should be the token again.
TEMPLATES = (
    ("Please repeat the string exactly.\nString: «", "»\nRepeated: «"),
    ("Copy this word: \"", "\"\nCopy: \""),
)


class LlamaCppProber:
    def __init__(self, path: str, n_ctx: int = 256, n_threads: int | None = None) -> None:
        from llmassay.backends.llama_load import open_llama

        self.llm = open_llama(path, n_threads=n_threads, n_ctx=n_ctx, logits_all=False, verbose=False)
        self.templates = tuple(f"{a}<token>{b}" for a, b in TEMPLATES)
        self._prefixes = [self.llm.tokenize(a.encode(), add_bos=True, special=False) for a, _ in TEMPLATES]
        self._suffixes = [self.llm.tokenize(b.encode(), add_bos=False, special=False) for _, b in TEMPLATES]

    def max_probs(self, token_ids: list[int]) -> list[float]:
        """Per token, the largest repeat probability over the templates (template by
        template, so each prefix is evaluated once)."""
        best = [0.0] * len(token_ids)
        for prefix, suffix in zip(self._prefixes, self._suffixes):
            self.llm.reset()
            self.llm.eval(prefix)
            for i, token_id in enumerate(token_ids):
                best[i] = max(best[i], self._prob(prefix, token_id, suffix))
        return best

    def _prob(self, prefix: list[int], token_id: int, suffix: list[int]) -> float:
        llm = self.llm
        llm.n_tokens = len(prefix)  # eval() drops the cache past this point
        llm.eval([token_id, *suffix])
        logits = llama_internals.logits(llm, 1, llm.n_vocab())[0].astype(np.float64)
        if not np.isfinite(logits).all():
            raise LlmassayError(f"repeat prompt for token {token_id}: the model returned non-finite logits")
        logits -= logits.max()
        probs = np.exp(logits)
        return float(probs[token_id] / probs.sum())
