"""The mitigation lab (issue #33): fine-tune a model against a failure a probe measured, then
measure the change with the probes themselves (`--model-args adapter=DIR`, `llmassay compare`).

`sft` trains a LoRA adapter (PEFT) on (prompt, completion) pairs, `dpo` on (prompt, chosen,
rejected) preference pairs, from a recipe or a JSONL file, after the leakage guard (the
contamination audit between the training texts and the recipe's evaluation tasks) has
passed; both run in one plain loop (`tune.loop`: checkpoints, exact resume, the run card).
torch, transformers and peft come with the `tune` extra and are imported only when training
starts.
"""

from llmassay.tune.data import Pair, PreferencePair, read_pairs, read_preferences, write_texts
from llmassay.tune.dpo import DpoConfig, train_dpo
from llmassay.tune.guard import GuardResult, leakage_guard
from llmassay.tune.loop import TrainConfig, TrainRun
from llmassay.tune.recipes import RECIPES, Recipe, recipe
from llmassay.tune.sft import SftConfig, SftRun, train_sft

__all__ = [
    "DpoConfig",
    "GuardResult",
    "Pair",
    "PreferencePair",
    "RECIPES",
    "Recipe",
    "SftConfig",
    "SftRun",
    "TrainConfig",
    "TrainRun",
    "leakage_guard",
    "read_pairs",
    "read_preferences",
    "recipe",
    "train_dpo",
    "train_sft",
    "write_texts",
]
