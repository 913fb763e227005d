"""Prompt-lookup speculative decoding (llama-cpp-python's `LlamaPromptLookupDecoding`)
against plain decoding: the same greedy tokens, and how much faster.

Prompt lookup drafts the next tokens by finding the last n-gram of the text so far in the
prompt and copying what followed it; the model verifies the draft in one batch. It helps
when the output copies the prompt (extraction) and costs a little when it does not
(arithmetic). Greedy verification keeps the output the model would have produced, except
where llama.cpp's batched and one-token kernels round differently and flip a near-tie:
`identical` reports it, token for token, never assumed.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from llmassay.types import Metric


@dataclass(frozen=True)
class SpecRun:
    prompt_index: int
    tokens_plain: list[int]
    tokens_lookup: list[int]
    seconds_plain: float
    seconds_lookup: float

    @property
    def identical(self) -> bool:
        return self.tokens_plain == self.tokens_lookup

    @property
    def first_difference(self) -> int | None:
        for i, (a, b) in enumerate(zip(self.tokens_plain, self.tokens_lookup)):
            if a != b:
                return i
        return None if self.identical else min(len(self.tokens_plain), len(self.tokens_lookup))

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "identical": self.identical, "first_difference": self.first_difference}


def _load(model_path: Path, draft: Any, n_ctx: int, n_threads: int | None) -> Any:
    from llmassay.backends.llama_load import open_llama

    return open_llama(str(model_path), n_threads=n_threads, n_ctx=n_ctx, draft_model=draft, verbose=False, seed=0)


def greedy_tokens(llm: Any, prompt: str, max_tokens: int) -> tuple[list[int], float]:
    """Greedy token ids after `prompt` (stopping at end-of-generation) and the wall time."""
    from llmassay.backends import llama_internals

    llm.reset()
    tokens = llm.tokenize(prompt.encode("utf-8"), add_bos=True, special=True)
    out: list[int] = []
    start = time.perf_counter()
    for token in llm.generate(tokens, top_k=1, top_p=1.0, min_p=0.0, temp=0.0, repeat_penalty=1.0, reset=True):
        if llama_internals.is_end_of_generation(llm, token) or len(out) >= max_tokens:
            break
        out.append(token)
    return out, time.perf_counter() - start


def compare_prompt_lookup(model_path: Path, prompts: list[str], max_tokens: int = 48, num_pred_tokens: int = 10,
                          n_ctx: int = 2048, n_threads: int | None = None) -> list[SpecRun]:
    """Each prompt decoded greedily by a plain model and by the same weights with prompt
    lookup; each model loaded once, the two runs of a prompt back to back."""
    from llmassay.backends import llama_internals

    plain = _load(model_path, None, n_ctx, n_threads)
    lookup = _load(model_path, llama_internals.prompt_lookup_draft(num_pred_tokens), n_ctx, n_threads)
    runs = []
    for i, prompt in enumerate(prompts):
        a, ta = greedy_tokens(plain, prompt, max_tokens)
        b, tb = greedy_tokens(lookup, prompt, max_tokens)
        runs.append(SpecRun(i, a, b, ta, tb))
    return runs


@dataclass(frozen=True)
class SpeedupSummary:
    """Prompt lookup against plain decoding over prompts (the unit that was sampled).

    `speedup`: per prompt, plain seconds per generated token / lookup seconds per generated
    token, each averaged over the repeats of that prompt, then the mean over prompts with a
    bootstrap CI over prompts (repeats of one greedy decode are near-duplicates: resampling
    them as if independent gives too narrow a CI). Per token, because where the two outputs
    differ they differ in length, and a ratio of whole-answer times would compare different
    work. `identical`: share of prompts whose two outputs are equal token for token in every
    repeat (Wilson), to read beside it: the speed-up is "for the same output" only there.
    """

    speedup: Metric
    identical: Metric
    n_prompts: int
    n_repeats: int
    skipped: tuple[int, ...]  # prompts with no generated token on a side: no time per token

    def as_dict(self) -> dict[str, Any]:
        return {"speedup": self.speedup.as_dict(), "identical": self.identical.as_dict(), "n_prompts": self.n_prompts,
                "n_repeats": self.n_repeats, "skipped": list(self.skipped)}


def per_prompt_speedup(repeats: Sequence[Sequence[SpecRun]], seed: int = 0) -> SpeedupSummary:
    """`repeats`: one list of `SpecRun` per repeat of the whole comparison (as many as
    `compare_prompt_lookup` calls), matched by `prompt_index`."""
    from llmassay.metrics import bootstrap_mean, proportion

    by_prompt: dict[int, list[SpecRun]] = {}
    for runs in repeats:
        for run in runs:
            by_prompt.setdefault(run.prompt_index, []).append(run)
    ratios, skipped = [], []
    for index, runs in sorted(by_prompt.items()):
        if any(not r.tokens_plain or not r.tokens_lookup for r in runs):
            skipped.append(index)
            continue
        plain = float(np.mean([r.seconds_plain / len(r.tokens_plain) for r in runs]))
        lookup = float(np.mean([r.seconds_lookup / len(r.tokens_lookup) for r in runs]))
        ratios.append(plain / lookup)
    speed = bootstrap_mean(ratios, seed=seed)
    speed = Metric(speed.value, speed.ci_low, speed.ci_high, speed.n, speed.stderr,
                   "mean over prompts of plain / lookup seconds per generated token (repeats averaged per prompt), "
                   "bootstrap over prompts")
    same = proportion([all(r.identical for r in runs) for runs in by_prompt.values()])
    return SpeedupSummary(speed, same, len(by_prompt), len(repeats), tuple(skipped))
