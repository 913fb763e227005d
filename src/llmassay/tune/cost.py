"""The cost of the fix (§2.4's memory argument, measured): LoRA against full fine-tuning of the
same model on the same recipe, batches and seed for a few steps, and their ratio.

Each run is a fresh Python process (`python -c ... run_child`), so one run's peak RSS — the
process's high-water mark, which never falls — cannot leak into the other's, and neither
includes this parent's. The figures are the two run cards' (`tune.loop`): the bytes of
weights, gradients, AdamW state and the DPO reference copy computed from the tensors (they
do not depend on the machine's load), the measured RSS after loading and at the peak, the
median seconds per step and tokens/s (these do), and the bytes each writes to disk.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from llmassay.tune.loop import CHECKPOINT, TUNINGS
from llmassay.tune.recipes import recipe
from llmassay.types import LlmassayError

# (card field, label, scale, digits): the table's rows, in order
ROWS: tuple[tuple[str, str, float, int], ...] = (
    ("trainable_parameters", "trainable parameters", 1, 0),
    ("total_parameters", "total parameters", 1, 0),
    ("weights_bytes", "weights in memory (MiB, computed)", 2**20, 1),
    ("gradient_bytes", "gradients (MiB, computed)", 2**20, 1),
    ("optimizer_state_bytes", "AdamW state (MiB, computed)", 2**20, 1),
    ("reference_bytes", "DPO reference copy (MiB, computed)", 2**20, 1),
    ("training_state_bytes", "training state: the four above (MiB, computed)", 2**20, 1),
    ("rss_after_load_mib", "RSS after loading (MiB, measured)", 1, 0),
    ("peak_rss_mib", "peak RSS of the process (MiB, measured)", 1, 0),
    ("training_rss_mib", "peak RSS − RSS after loading (MiB)", 1, 0),
    ("seconds_per_step", "seconds per step (median, wall)", 1, 2),
    ("cpu_seconds_per_step", "CPU seconds per step (median)", 1, 2),
    ("tokens_per_second", "tokens/s", 1, 1),
    ("output_bytes", "written: adapter/ or model/ (MB)", 1e6, 1),
    ("checkpoint_bytes", "checkpoint/ (MB)", 1e6, 1),
    ("process_seconds", "process wall time (s)", 1, 0),
    ("loss_first", "loss, step 1", 1, 4),
    ("loss_last", "loss, last step", 1, 4),
)

_CHILD = "import sys; from llmassay.tune.cost import run_child; run_child(sys.argv[1])"


def run_child(spec_json: str) -> None:
    """One arm of the comparison, in the process `compare_cost` started: train and write the card."""
    from llmassay.tune.dpo import DpoConfig
    from llmassay.tune.loop import TrainConfig
    from llmassay.tune.pipeline import run_dpo, run_sft

    spec = json.loads(spec_json)
    chosen = recipe(spec["recipe"])
    common = {**spec["config"], "prompt_format": chosen.prompt_format}
    tuning, steps = common["tuning"], common["steps"]

    def show(entry: dict[str, Any]) -> None:
        print(f"{tuning}: step {entry['step']}/{steps}  loss {entry['loss']:.4f}  {entry['seconds']:.2f} s",
              file=sys.stderr, flush=True)

    where = (spec["model"], spec["model_args"], spec["output"])
    try:
        if chosen.method == "dpo":
            run_dpo(*where, DpoConfig(**common), recipe_name=spec["recipe"], on_step=show)
        else:
            run_sft(*where, TrainConfig(**common), recipe_name=spec["recipe"], on_step=show)
    except LlmassayError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)


def _fresh(folder: Path) -> None:
    """The runs' folders belong to this command: a previous measurement is replaced, anything else refused."""
    if folder.exists() and any(folder.iterdir()):
        if not (folder / "config.json").exists():
            raise LlmassayError(f"--output-path: {folder} exists and is not a tune output folder; give a new folder")
        shutil.rmtree(folder)


def compare_cost(
    model: str,
    model_args: dict[str, Any],
    recipe_name: str,
    output: str | Path,
    steps: int = 3,
    batch_size: int = 4,
    max_length: int = 256,
    lr: float = 5e-4,
    full_lr: float = 2e-5,
    rank: int = 8,
    seed: int = 0,
    keep_checkpoints: bool = False,
) -> dict[str, Any]:
    """Run the recipe with LoRA, then with full fine-tuning, each in a fresh process, into
    OUTPUT/lora and OUTPUT/full; return (and write to OUTPUT/cost.json and OUTPUT/report.html) both cards' cost
    figures and their ratio full / LoRA. Checkpoints are measured, then deleted unless kept.
    Everything is the same for both but the learning rate: `lr` for LoRA, `full_lr` for full
    fine-tuning (LoRA's rate on every weight overshoots; the cost figures do not depend on it)."""
    chosen = recipe(recipe_name)  # an unknown recipe fails here, before any process starts
    if steps < 1:
        raise LlmassayError("--steps: must be a positive integer")
    output = Path(output)
    import llmassay

    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(Path(llmassay.__file__).resolve().parents[1])] + [p for p in [os.environ.get("PYTHONPATH")] if p])}
    cards: dict[str, dict[str, Any]] = {}
    for tuning in TUNINGS:
        folder = output / tuning
        _fresh(folder)
        spec = {"model": model, "model_args": model_args, "recipe": recipe_name, "output": str(folder),
                "config": {"steps": steps, "batch_size": batch_size, "max_length": max_length,
                           "lr": full_lr if tuning == "full" else lr, "rank": rank,
                           "alpha": 2 * rank, "seed": seed, "save_every": steps, "tuning": tuning}}
        t0 = time.perf_counter()
        done = subprocess.run([sys.executable, "-c", _CHILD, json.dumps(spec)], env=env, stdout=subprocess.DEVNULL)
        if done.returncode != 0:  # the child printed its error (one line for an LlmassayError) on stderr
            raise LlmassayError(f"tune cost: the {tuning} run failed (exit {done.returncode}; its error is above)")
        card = json.loads((folder / "card.json").read_text(encoding="utf-8"))
        card["process_seconds"] = round(time.perf_counter() - t0, 1)
        if card.get("rss_after_load_mib") is not None:
            card["training_rss_mib"] = round(card["peak_rss_mib"] - card["rss_after_load_mib"], 1)
        if not keep_checkpoints:
            shutil.rmtree(folder / CHECKPOINT, ignore_errors=True)
        cards[tuning] = card
    result = {"model": model, "model_args": {k: str(v) for k, v in model_args.items()}, "recipe": recipe_name,
              "objective": chosen.method, "steps": steps, "batch_size": batch_size, "seed": seed,
              "lr": {"lora": lr, "full": full_lr},
              "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
              "rows": [{"field": field, "label": label, "lora": cards["lora"].get(field), "full": cards["full"].get(field),
                        "ratio": _ratio(cards["full"].get(field), cards["lora"].get(field))}
                       for field, label, _, _ in ROWS]}
    output.mkdir(parents=True, exist_ok=True)
    (output / "cost.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    from llmassay.report.html import write_report

    write_report(output)  # report.html: the table, linking each arm's own page
    return result


def _ratio(full: Any, lora: Any) -> float | None:
    if not isinstance(full, (int, float)) or not isinstance(lora, (int, float)) or not lora:
        return None
    return round(full / lora, 2)


def cost_table(result: dict[str, Any]) -> str:
    """The comparison as a markdown table (LoRA, full, full / LoRA)."""
    lines = [f"{result['objective']} on recipe {result['recipe']}, {result['steps']} steps, batch {result['batch_size']}, "
             f"seed {result['seed']}" + (f", lr {result['lr']['lora']:g} (LoRA) / {result['lr']['full']:g} (full)"
                                         if "lr" in result else ""),
             "", "| cost | LoRA | full | full / LoRA |", "| --- | --- | --- | --- |"]
    lines += [f"| {' | '.join(cells)} |" for cells in cost_cells(result)]
    return "\n".join(lines)


def cost_cells(result: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """The comparison's rows as shown (label, LoRA, full, full / LoRA): the table above and the
    report's page (`report.tune`) print the same cells."""
    scale = {field: (s, d) for field, _, s, d in ROWS}
    out = []
    for row in result["rows"]:
        s, d = scale.get(row["field"], (1, 2))
        lora, full = ("—" if v is None else f"{v / s:,.{d}f}" for v in (row["lora"], row["full"]))
        out.append((str(row["label"]), lora, full, "—" if row["ratio"] is None else f"{row['ratio']:,.2f}×"))
    return out
