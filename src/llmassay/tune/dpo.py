"""DPO (Rafailov et al. 2023) on a LoRA adapter: the preference loss

    −log σ(β · [(log π(chosen) − log π_ref(chosen)) − (log π(rejected) − log π_ref(rejected))])

with log π the summed log-probability of a completion's tokens (and its end-of-sequence
token) given the prompt, and π_ref the untuned model: with LoRA, the same model with the
adapter disabled, so no second copy is held in memory; with full fine-tuning
(`tuning="full"`), a frozen copy of the weights taken before training — one more model's
weights in memory (`reference_bytes` in the card).

Written by hand on PEFT, in the plain loop `tune sft` uses, rather than with TRL's
DPOTrainer: that trainer rides on transformers' Trainer, whose resume restores a checkpoint
through its own dataloader skipping and RNG state, where this project's contract is that a
run killed with -9 resumes with the *same* losses because a step's batch is a function of
(seed, step) alone (tested); it also tokenises through `datasets` and wants a Trainer
output layout, while the card's per-step seconds, tokens and peak RSS are measured here.
The objective is TRL's default (loss_type "sigmoid", reverse KL, reference = adapter
disabled, chosen and rejected in one batch as [chosen; rejected]) — the same formula, on
about a hundred lines instead of a Trainer on 2 CPU cores. At step 1 the adapter is zero, so
the policy is the reference and the loss is exactly log 2 (tested).

Each step also records DPO's implicit rewards β·(log π − log π_ref): their mean margin
(chosen − rejected) and accuracy (share of pairs whose chosen reward is higher).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llmassay.tune.data import PreferencePair
from llmassay.tune.guard import GuardResult
from llmassay.tune.loop import TrainConfig, TrainRun, collate, pad_id, prompt_ids, train_model, with_completion
from llmassay.types import LlmassayError

Encoded = tuple[tuple[list[int], int], tuple[list[int], int]]  # (chosen ids, prompt tokens), (rejected ...)


@dataclass(frozen=True)
class DpoConfig(TrainConfig):
    beta: float = 0.1  # strength of the pull back to the reference (TRL's default)

    def check(self) -> None:
        super().check()
        if self.beta <= 0:
            raise LlmassayError("--beta: must be positive")


def _encode(pairs: list[PreferencePair], backend: Any, cfg: TrainConfig) -> list[Encoded]:
    out = []
    for p in pairs:
        prompt = prompt_ids(backend, p.prompt, cfg)
        out.append((with_completion(backend, prompt, p.chosen, cfg), with_completion(backend, prompt, p.rejected, cfg)))
    return out


def sequence_logps(model: Any, ids: Any, mask: Any, labels: Any) -> Any:
    """Summed log-probability of each row's labelled tokens (labels −100 are skipped)."""
    import torch.nn.functional as F

    logits = model(input_ids=ids, attention_mask=mask).logits[:, :-1].float()
    target = labels[:, 1:]
    per_token = -F.cross_entropy(logits.transpose(1, 2), target, ignore_index=-100, reduction="none")
    return per_token.sum(dim=1)


def dpo_loss(policy_chosen: Any, policy_rejected: Any, ref_chosen: Any, ref_rejected: Any,
             beta: float) -> tuple[Any, Any, Any]:
    """(mean loss, chosen rewards, rejected rewards) from summed log-probabilities per pair."""
    import torch.nn.functional as F

    chosen = beta * (policy_chosen - ref_chosen)
    rejected = beta * (policy_rejected - ref_rejected)
    return -F.logsigmoid(chosen - rejected).mean(), chosen.detach(), rejected.detach()


def train_dpo(
    backend: Any,
    pairs: list[PreferencePair],
    output: str | Path,
    cfg: DpoConfig,
    guard: GuardResult | None = None,
    source: dict[str, Any] | None = None,
    on_step: Callable[[dict[str, Any]], None] | None = None,
) -> TrainRun:
    """Train `backend.model` (an `HFBackend`; trained in place: a LoRA adapter, or every
    parameter with `cfg.tuning == "full"`) to prefer
    each pair's chosen completion over its rejected one, and write the output folder (see
    `tune.loop`)."""
    cfg.check()
    import torch

    pad, device = pad_id(backend), backend.device

    def step_loss(model: Any, rows: list[Encoded], reference: Any) -> tuple[Any, dict[str, float], int]:
        ids, mask, labels, tokens = collate([c for c, _ in rows] + [r for _, r in rows], pad, torch)
        ids, mask, labels = ids.to(device), mask.to(device), labels.to(device)
        with torch.no_grad(), reference() as untuned:
            ref_chosen, ref_rejected = sequence_logps(untuned, ids, mask, labels).chunk(2)
        chosen, rejected = sequence_logps(model, ids, mask, labels).chunk(2)
        loss, r_chosen, r_rejected = dpo_loss(chosen, rejected, ref_chosen, ref_rejected, cfg.beta)
        figures = {"reward_margin": round(float((r_chosen - r_rejected).mean()), 6),
                   "reward_accuracy": round(float((r_chosen > r_rejected).float().mean()), 6),
                   "logp_chosen": round(float(chosen.detach().mean()), 4),
                   "logp_rejected": round(float(rejected.detach().mean()), 4)}
        return loss, figures, tokens

    return train_model("dpo", backend, pairs, _encode(pairs, backend, cfg), step_loss, output, cfg, guard, source,
                       on_step, reference=True)
