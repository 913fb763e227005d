"""`llmassay tune sft|dpo` as one library call each: examples (recipe or file) → leakage
guard → model → training. Both share the checks, the guard and the model loading here, and
the training loop in `tune.loop`; the CLI only parses and prints."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from llmassay.tune.data import Pair, PreferencePair, read_pairs, read_preferences, write_texts
from llmassay.tune.dpo import train_dpo
from llmassay.tune.guard import GuardResult, leakage_guard
from llmassay.tune.loop import TrainConfig, TrainRun
from llmassay.tune.recipes import recipe
from llmassay.tune.sft import train_sft
from llmassay.types import LlmassayError


def _prepare(
    method: str,
    model: str,
    model_args: dict[str, Any],
    output: Path,
    cfg: TrainConfig,
    recipe_name: str | None,
    data: str | Path | None,
    guard_tasks: tuple[str, ...] | None,
    allow_overlap: bool,
) -> tuple[list[Any], GuardResult, Any, dict[str, Any]]:
    """(examples, the guard's result, the loaded backend, the source record for config.json):
    the guard runs before the model loads, so a refusal costs seconds."""
    if (recipe_name is None) == (data is None):
        raise LlmassayError(f"tune {method}: give --recipe or --data (one of them)")
    if not model.startswith("hf/"):
        raise LlmassayError(f"tune {method}: --model must be hf/<dir or hub id> (got '{model}'); a bundled GGUF loads "
                            "as hf/<its folder> --model-args gguf_file=<file>")
    if "adapter" in model_args:
        raise LlmassayError(f"tune {method}: --model-args adapter= is for evaluation; training starts from the base model")
    cfg.check()
    if recipe_name is not None:
        chosen = recipe(recipe_name)
        if chosen.method != method:
            raise LlmassayError(f"--recipe {recipe_name}: a 'tune {chosen.method}' recipe, not 'tune {method}'")
        examples, tasks = chosen.build(cfg.seed), chosen.guard_tasks
    else:
        examples, tasks = (read_pairs if method == "sft" else read_preferences)(Path(str(data))), ()
    tasks = tuple(guard_tasks) if guard_tasks is not None else tasks
    texts = write_texts(examples, output / "training_data.jsonl")
    guard = leakage_guard(texts, tasks, allow_overlap)

    from llmassay.backends.base import load_backend

    backend = load_backend(model, **model_args)
    source = {"model": model, "model_args": {k: str(v) for k, v in model_args.items()},
              "recipe": recipe_name, "data": str(data) if data is not None else None, "guard_tasks": list(tasks),
              "allow_overlap": allow_overlap}
    return examples, guard, backend, source


_TRAINERS: dict[str, Callable[..., TrainRun]] = {"sft": train_sft, "dpo": train_dpo}


def run_tune(
    objective: str,
    model: str,
    model_args: dict[str, Any],
    output: str | Path,
    cfg: TrainConfig,
    recipe_name: str | None = None,
    data: str | Path | None = None,
    guard_tasks: tuple[str, ...] | None = None,
    allow_overlap: bool = False,
    on_step: Callable[[dict[str, Any]], None] | None = None,
) -> TrainRun:
    """Train with `objective` ("sft": (prompt, completion) pairs; "dpo": (prompt, chosen,
    rejected) pairs, `cfg` a DpoConfig) on a recipe's examples or a JSONL file's, after the
    leakage guard: `guard_tasks` (default: the recipe's evaluation tasks; none for --data
    unless given)."""
    examples, guard, backend, source = _prepare(objective, model, model_args, Path(output), cfg, recipe_name, data,
                                                guard_tasks, allow_overlap)
    return _TRAINERS[objective](backend, examples, output, cfg, guard, source, on_step)


def run_sft(*args: Any, **kwargs: Any) -> TrainRun:
    """`run_tune("sft", ...)`."""
    return run_tune("sft", *args, **kwargs)


def run_dpo(*args: Any, **kwargs: Any) -> TrainRun:
    """`run_tune("dpo", ...)` (`cfg` a DpoConfig)."""
    return run_tune("dpo", *args, **kwargs)


__all__ = ["Pair", "PreferencePair", "run_dpo", "run_sft", "run_tune"]
