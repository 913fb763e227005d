"""SFT: the next-token loss on each pair's completion (prompt tokens masked), on a LoRA adapter
(PEFT) or every parameter (`tuning="full"`), in the shared plain loop of `tune.loop`
(checkpoints, exact resume, the run card)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from llmassay.tune.data import Pair
from llmassay.tune.guard import GuardResult
from llmassay.tune.loop import TrainConfig, TrainRun, collate, pad_id, prompt_ids, train_model, with_completion

SftConfig = TrainConfig
SftRun = TrainRun


def _encode(pairs: list[Pair], backend: Any, cfg: TrainConfig) -> list[tuple[list[int], int]]:
    """(token ids, number of prompt tokens) per pair."""
    return [with_completion(backend, prompt_ids(backend, p.prompt, cfg), p.completion, cfg) for p in pairs]


def train_sft(
    backend: Any,
    pairs: list[Pair],
    output: str | Path,
    cfg: TrainConfig,
    guard: GuardResult | None = None,
    source: dict[str, Any] | None = None,
    on_step: Callable[[dict[str, Any]], None] | None = None,
) -> TrainRun:
    """Train `backend.model` (an `HFBackend`; trained in place: a LoRA adapter, or every
    parameter with `cfg.tuning == "full"`) on the completions of `pairs`, and write the output
    folder (see `tune.loop`)."""
    cfg.check()
    import torch

    pad = pad_id(backend)

    def step_loss(model: Any, rows: list[tuple[list[int], int]], reference: Any) -> tuple[Any, dict[str, float], int]:
        ids, mask, labels, tokens = collate(rows, pad, torch)
        out = model(input_ids=ids.to(backend.device), attention_mask=mask.to(backend.device),
                    labels=labels.to(backend.device))
        return out.loss, {}, tokens

    return train_model("sft", backend, pairs, _encode(pairs, backend, cfg), step_loss, output, cfg, guard, source,
                      on_step)
