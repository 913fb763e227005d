"""`llmassay tune sft|dpo|cost|export-gguf`: argument wiring and output only; the work is in `llmassay.tune`."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from llmassay.terminal import stdout_console as _stdout

# per method: (help, --recipe help, --data help, default steps)
_METHODS = {
    "sft": ("LoRA SFT (PEFT) on a recipe's or a JSONL file's (prompt, completion) pairs",
            "a bundled recipe: structured (JSON answers from the country KB)",
            "JSONL of {prompt, completion} (optionally id) per line", 40),
    "dpo": ("DPO on a LoRA adapter (PEFT) from a recipe's or a JSONL file's (prompt, chosen, rejected) pairs",
            "a bundled recipe: injection (ignore planted instructions; KB passages), bias (unknown/context answers "
            "over stereotypes; raw prompts)",
            "JSONL of {prompt, chosen, rejected} (optionally id) per line", 10),
}


def _add_common(p: argparse.ArgumentParser, method: str) -> None:
    """The options every `tune` method shares (model, data, LoRA, loop, guard)."""
    _, recipe_help, data_help, steps = _METHODS[method]
    p.add_argument("--model", required=True, help="hf/<dir> (a bundled GGUF: hf/<dir> --model-args gguf_file=F)")
    p.add_argument("--model-args", default="", help="k=v,k2=v2 passed to the hf backend (gguf_file, dtype, ...)")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--recipe", help=recipe_help)
    src.add_argument("--data", help=data_help)
    p.add_argument("--output-path", required=True, metavar="DIR", help="folder for adapter/, config.json, loss.json, "
                   "loss.svg, card.json; a folder holding a checkpoint of the same run resumes from it")
    p.add_argument("--method", dest="tuning", default="lora", choices=("lora", "full"),
                   help="lora: a LoRA adapter (default); full: every parameter trainable (same optimizer, data and "
                        "seed; writes the whole model to DIR/model; for dpo, a frozen copy is the reference)")
    p.add_argument("--steps", type=int, default=steps, help=f"optimizer steps (default {steps})")
    p.add_argument("--lr", type=float, default=5e-4, help="learning rate, AdamW, constant (default 5e-4)")
    p.add_argument("--rank", type=int, default=8, help="LoRA rank (default 8; alpha = 2 x rank)")
    p.add_argument("--batch-size", type=int, default=4, help="pairs per step (default 4)")
    p.add_argument("--max-length", type=int, default=256, help="tokens per pair (default 256)")
    p.add_argument("--save-every", type=int, default=10, help="checkpoint every N steps (default 10)")
    p.add_argument("--seed", type=int, default=0, help="seed of the data order, the LoRA init and the recipe (default 0)")
    p.add_argument("--prompt-format", default=None, choices=("chat", "raw"),
                   help="chat: the model's chat template, when it has one, as the probes ask; raw (default: the "
                        "recipe's — raw for bias, whose probes score plain text — else chat)")
    p.add_argument("--guard-tasks", default=None,
                   help="evaluation tasks the training texts must not overlap, comma-separated "
                        "(default: the recipe's; none for --data)")
    p.add_argument("--allow-overlap", action="store_true",
                   help="train even when the leakage guard finds overlap (recorded in the run card)")


def _add_beta(p: argparse.ArgumentParser) -> None:
    p.add_argument("--beta", type=float, default=0.1,
                   help="DPO's beta: how strongly the tuned model is held to the untuned one (default 0.1)")


def add_tune_commands(sub: Any) -> None:
    tune = sub.add_parser("tune", help="mitigation lab: fine-tune a LoRA adapter against a measured failure")
    kinds = tune.add_subparsers(dest="tune_command", required=True)
    for method, (help_text, *_) in _METHODS.items():
        p = kinds.add_parser(method, help=help_text)
        _add_common(p, method)
        if method == "dpo":
            _add_beta(p)
    gguf = kinds.add_parser("export-gguf", help="convert a LoRA adapter to llama.cpp's GGUF LoRA "
                            "(what llamacpp/... --model-args lora=DIR loads, converting on first use)")
    gguf.add_argument("adapter", metavar="DIR", help="a `tune` output folder or its adapter/ folder")
    gguf.add_argument("--model", default="llamacpp/smollm2-135m",
                      help="the base llamacpp/<alias or file.gguf> (default llamacpp/smollm2-135m)")
    gguf.add_argument("--output", metavar="FILE", help="the .gguf to write (default DIR/adapter.gguf)")

    cost = kinds.add_parser("cost", help="the cost of the fix: LoRA against full fine-tuning of the same model for a "
                                         "few steps, each in a fresh process; prints the ratio table")
    cost.add_argument("--model", required=True, help="hf/<dir> (a bundled GGUF: hf/<dir> --model-args gguf_file=F)")
    cost.add_argument("--model-args", default="", help="k=v,k2=v2 passed to the hf backend")
    cost.add_argument("--recipe", required=True, help="a bundled recipe (structured: sft; injection, bias: dpo)")
    cost.add_argument("--output-path", required=True, metavar="DIR",
                      help="folder for lora/ and full/ (each a tune output folder) and cost.json")
    cost.add_argument("--steps", type=int, default=3, help="steps of each run (default 3)")
    cost.add_argument("--batch-size", type=int, default=4, help="pairs per step (default 4)")
    cost.add_argument("--max-length", type=int, default=256, help="tokens per pair (default 256)")
    cost.add_argument("--lr", type=float, default=5e-4, help="LoRA's learning rate (default 5e-4)")
    cost.add_argument("--full-lr", type=float, default=2e-5,
                      help="full fine-tuning's learning rate (default 2e-5: LoRA's rate on every weight overshoots)")
    cost.add_argument("--rank", type=int, default=8, help="LoRA rank (default 8)")
    cost.add_argument("--seed", type=int, default=0, help="seed of both runs (default 0)")
    cost.add_argument("--keep-checkpoints", action="store_true",
                      help="keep each run's checkpoint/ (full: weights + optimizer state, ~3x the model); "
                           "by default measured in the card, then deleted")


def _run_cost(args: argparse.Namespace) -> None:
    from llmassay.backends.base import parse_model_args
    from llmassay.tune.cost import compare_cost, cost_table

    console = _stdout()
    result = compare_cost(args.model, parse_model_args(args.model_args), args.recipe, args.output_path,
                          steps=args.steps, batch_size=args.batch_size, max_length=args.max_length, lr=args.lr,
                          full_lr=args.full_lr, rank=args.rank, seed=args.seed, keep_checkpoints=args.keep_checkpoints)
    console.print(cost_table(result), highlight=False, markup=False)
    console.print(f"report: {Path(args.output_path) / 'report.html'}", highlight=False, markup=False)



def run_tune_command(args: argparse.Namespace) -> None:
    if args.tune_command == "export-gguf":
        _export_gguf(args)
        return
    if args.tune_command == "cost":
        _run_cost(args)
        return
    from llmassay.backends.base import parse_model_args
    from llmassay.tune.dpo import DpoConfig
    from llmassay.tune.loop import TrainConfig
    from llmassay.tune.pipeline import run_dpo, run_sft
    from llmassay.tune.recipes import recipe

    prompt_format = args.prompt_format or (recipe(args.recipe).prompt_format if args.recipe else "chat")
    common = dict(steps=args.steps, lr=args.lr, rank=args.rank, alpha=2 * args.rank, batch_size=args.batch_size,
                  max_length=args.max_length, seed=args.seed, save_every=args.save_every, prompt_format=prompt_format,
                  tuning=args.tuning)
    cfg = DpoConfig(**common, beta=args.beta) if args.tune_command == "dpo" else TrainConfig(**common)
    guard = tuple(t for t in args.guard_tasks.split(",") if t) if args.guard_tasks is not None else None
    console = _stdout()

    def show(entry: dict[str, Any]) -> None:
        extra = (f"  margin {entry['reward_margin']:+.3f}  acc {entry['reward_accuracy']:.2f}"
                 if "reward_margin" in entry else "")
        console.print(f"step {entry['step']}/{cfg.steps}  loss {entry['loss']:.4f}{extra}  {entry['seconds']:.2f} s",
                      highlight=False)

    run = (run_dpo if args.tune_command == "dpo" else run_sft)(
        args.model, parse_model_args(args.model_args), args.output_path, cfg, args.recipe, args.data, guard,
        args.allow_overlap, show)
    console.print(json.dumps(run.card, indent=2), highlight=False, markup=False)
    if run.card["output"] == "model":
        console.print(f"model: {run.output / 'model'} (evaluate with --model hf/{run.output / 'model'})",
                      highlight=False, markup=False)
    else:
        console.print(f"adapter: {run.output / 'adapter'} (evaluate with --model-args ...,adapter="
                      f"{run.output / 'adapter'})", highlight=False, markup=False)
    console.print(f"report: {run.output / 'report.html'}", highlight=False, markup=False)


def _export_gguf(args: argparse.Namespace) -> None:
    from llmassay.models import resolve_model_path
    from llmassay.tune.gguf_lora import adapter_folder, convert
    from llmassay.types import LlmassayError

    if not args.model.startswith("llamacpp/"):
        raise LlmassayError(f"tune export-gguf: --model must be llamacpp/<alias or file.gguf> (got '{args.model}')")
    folder = adapter_folder(args.adapter)
    out = Path(args.output) if args.output else (folder.parent if folder.name == "adapter" else folder) / "adapter.gguf"
    done = convert(folder, resolve_model_path(args.model.removeprefix("llamacpp/")), out)
    _stdout().print(f"wrote {done.path} ({done.architecture} LoRA, rank {done.rank}, alpha {done.alpha:g}, "
                    f"adapter sha256 {done.adapter_sha256[:16]}): for llama.cpp tools (llama-cli --lora FILE); "
                    f"llmassay itself takes the folder: --model-args lora={args.adapter}",
                    highlight=False, markup=False)
