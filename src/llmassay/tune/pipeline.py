"""`llmassay tune sft` as one library call: pairs (recipe or file) → leakage guard → model →
training. The CLI only parses and prints."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from llmassay.tune.data import read_pairs, write_texts
from llmassay.tune.guard import leakage_guard
from llmassay.tune.recipes import recipe
from llmassay.tune.sft import SftConfig, SftRun, train_sft
from llmassay.types import LlmassayError


def run_sft(
    model: str,
    model_args: dict[str, Any],
    output: str | Path,
    cfg: SftConfig,
    recipe_name: str | None = None,
    data: str | Path | None = None,
    guard_tasks: tuple[str, ...] | None = None,
    allow_overlap: bool = False,
    on_step: Callable[[dict[str, Any]], None] | None = None,
) -> SftRun:
    """Train on a recipe's pairs or a JSONL file's, after the leakage guard: `guard_tasks`
    (default: the recipe's evaluation tasks; none for --data unless given)."""
    if (recipe_name is None) == (data is None):
        raise LlmassayError("tune sft: give --recipe or --data (one of them)")
    if not model.startswith("hf/"):
        raise LlmassayError(f"tune sft: --model must be hf/<dir or hub id> (got '{model}'); a bundled GGUF loads "
                            "as hf/<its folder> --model-args gguf_file=<file>")
    if "adapter" in model_args:
        raise LlmassayError("tune sft: --model-args adapter= is for evaluation; training starts from the base model")
    cfg.check()
    output = Path(output)
    if recipe_name is not None:
        chosen = recipe(recipe_name)
        pairs, tasks = chosen.build(cfg.seed), chosen.guard_tasks
    else:
        pairs, tasks = read_pairs(Path(str(data))), ()
    tasks = tuple(guard_tasks) if guard_tasks is not None else tasks
    texts = write_texts(pairs, output / "training_data.jsonl")
    guard = leakage_guard(texts, tasks, allow_overlap)  # before the model loads: a refusal costs seconds

    from llmassay.backends.base import load_backend

    backend = load_backend(model, **model_args)
    source = {"model": model, "model_args": {k: str(v) for k, v in model_args.items()},
              "recipe": recipe_name, "data": str(data) if data is not None else None, "guard_tasks": list(tasks),
              "allow_overlap": allow_overlap}
    return train_sft(backend, pairs, output, cfg, guard, source, on_step)
