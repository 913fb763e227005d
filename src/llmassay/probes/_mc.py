"""Multiple-choice scoring shared by every probe that asks MC questions.

One call scores many (prompt, choices) items four ways — summed log-likelihood,
log-likelihood per character and per UTF-8 byte (lm-eval's acc_norm and acc_bytes) and a
generated answer — through the engine, so that
variants of a question from any probe are deduplicated and cached together.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from llmassay.metrics import argmax, byte_normalised_loglikelihoods, normalised_loglikelihoods, parse_choice
from llmassay.probes._answer_format import instructed
from llmassay.probes.base import ProbeConfig
from llmassay.types import GenerateRequest, Generation, LoglikelihoodRequest

if TYPE_CHECKING:
    from llmassay.engine.engine import Engine

MC_ANSWER_TOKENS = 8  # enough for "B", " (B)" or "The answer is B"
SCORING_MODES = ("acc", "acc_norm", "acc_bytes", "acc_gen")
LOGLIK_METRICS = ("acc", "acc_norm", "acc_bytes")  # metrics read from log-likelihoods (acc_gen needs none)


@dataclass(frozen=True)
class MCItem:
    prompt: str
    choices: tuple[str, ...]  # answer strings; the delimiter is prepended when scored
    instruction: str = ""  # said before the prompt in a chat turn (the answer's format); never in log-likelihoods


@dataclass(frozen=True)
class MCScore:
    loglikelihoods: tuple[float, ...]
    n_tokens: tuple[int, ...]
    is_greedy: tuple[bool, ...]
    generation: str | None = None
    n_truncated_tokens: int = 0  # the most tokens any of the item's requests lost to the context window
    prompt: str | None = None  # the item's prompt: the options it lists name the choices too (parse_choice)

    @property
    def pred(self) -> int:
        return argmax(self.loglikelihoods)

    def pred_norm(self, choices: Sequence[str]) -> int:
        return argmax(normalised_loglikelihoods(self.loglikelihoods, choices))

    def pred_bytes(self, choices: Sequence[str]) -> int:
        return argmax(byte_normalised_loglikelihoods(self.loglikelihoods, choices))

    def pred_gen(self, choices: Sequence[str]) -> int | None:
        return None if self.generation is None else parse_choice(self.generation, choices, self.prompt)

    def prediction(self, mode: str, choices: Sequence[str]) -> int | None:
        if mode == "acc":
            return self.pred
        if mode == "acc_norm":
            return self.pred_norm(choices)
        if mode == "acc_bytes":
            return self.pred_bytes(choices)
        return self.pred_gen(choices)


def score_multiple_choice(
    engine: Engine,
    items: Sequence[MCItem],
    delimiter: str,
    cfg: ProbeConfig,
    generate: bool,
    repeat: int = 0,
    loglik: bool = True,
    chat: bool = False,
) -> list[MCScore]:
    """Score `items` by log-likelihood (unless `loglik` is off: a chat endpoint may return
    no prompt log-probabilities) and, with `generate`, by a written answer — through the
    model's chat template when `chat` (after the item's `instruction`). Written answers are
    read with the item's prompt, whose listed options name the choices too."""
    requests = [LoglikelihoodRequest(item.prompt, delimiter + c) for item in items for c in item.choices]
    answers = iter(engine.loglikelihood(requests) if loglik else [])
    generations: list[Generation | None] = [None] * len(items)
    if generate:
        gen_requests = [
            GenerateRequest(
                prompt=None if chat else item.prompt,
                messages=(("user", instructed(item.prompt, item.instruction)),) if chat else None,
                max_tokens=MC_ANSWER_TOKENS,
                stop=("\n",),
                temperature=cfg.temperature,
                seed=cfg.seed,
                repeat=repeat,
            )
            for item in items
        ]
        generations = list(engine.generate(gen_requests))
    scores = []
    for item, generation in zip(items, generations):
        results = [next(answers) for _ in item.choices] if loglik else []
        scores.append(
            MCScore(
                loglikelihoods=tuple(r.logprob for r in results),
                n_tokens=tuple(r.n_tokens for r in results),
                is_greedy=tuple(r.is_greedy for r in results),
                generation=None if generation is None else generation.text,
                prompt=item.prompt,
                n_truncated_tokens=max([r.n_truncated_tokens for r in results]
                                       + [generation.n_truncated_tokens if generation else 0]),
            )
        )
    return scores
