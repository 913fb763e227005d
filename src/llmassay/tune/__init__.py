"""The mitigation lab (issue #33): fine-tune a model against a failure a probe measured, then
measure the change with the probes themselves (`--model-args adapter=DIR`, `llmassay compare`).

`sft` trains a LoRA adapter (PEFT) on (prompt, completion) pairs from a recipe or a JSONL file,
after the leakage guard (the contamination audit between the training texts and the recipe's
evaluation tasks) has passed. torch, transformers and peft come with the `tune` extra and are
imported only when training starts.
"""

from llmassay.tune.data import Pair, read_pairs, write_texts
from llmassay.tune.guard import GuardResult, leakage_guard
from llmassay.tune.recipes import RECIPES, Recipe, recipe
from llmassay.tune.sft import SftConfig, SftRun, train_sft

__all__ = [
    "GuardResult",
    "Pair",
    "RECIPES",
    "Recipe",
    "SftConfig",
    "SftRun",
    "leakage_guard",
    "read_pairs",
    "recipe",
    "train_sft",
    "write_texts",
]
