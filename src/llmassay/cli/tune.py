"""`llmassay tune sft` and `tune export-gguf`: argument wiring and output only; the work is in `llmassay.tune`."""

from __future__ import annotations

import argparse
import json
from typing import Any

from llmassay.terminal import stdout_console as _stdout


def add_tune_commands(sub: Any) -> None:
    tune = sub.add_parser("tune", help="mitigation lab: fine-tune a LoRA adapter against a measured failure")
    kinds = tune.add_subparsers(dest="tune_command", required=True)
    sft = kinds.add_parser("sft", help="LoRA SFT (PEFT) on a recipe's or a JSONL file's (prompt, completion) pairs")
    sft.add_argument("--model", required=True, help="hf/<dir> (a bundled GGUF: hf/<dir> --model-args gguf_file=F)")
    sft.add_argument("--model-args", default="", help="k=v,k2=v2 passed to the hf backend (gguf_file, dtype, ...)")
    src = sft.add_mutually_exclusive_group(required=True)
    src.add_argument("--recipe", help="a bundled recipe: structured (JSON answers from the country KB)")
    src.add_argument("--data", help="JSONL of {prompt, completion} (optionally id) per line")
    sft.add_argument("--output-path", required=True, metavar="DIR", help="folder for adapter/, config.json, loss.json, card.json; "
                     "a folder holding a checkpoint of the same run resumes from it")
    sft.add_argument("--steps", type=int, default=40, help="optimizer steps (default 40)")
    sft.add_argument("--lr", type=float, default=5e-4, help="learning rate, AdamW, constant (default 5e-4)")
    sft.add_argument("--rank", type=int, default=8, help="LoRA rank (default 8; alpha = 2 x rank)")
    sft.add_argument("--batch-size", type=int, default=4, help="pairs per step (default 4)")
    sft.add_argument("--max-length", type=int, default=256, help="tokens per pair (default 256)")
    sft.add_argument("--save-every", type=int, default=10, help="checkpoint every N steps (default 10)")
    sft.add_argument("--seed", type=int, default=0, help="seed of the data order, the LoRA init and the recipe (default 0)")
    sft.add_argument("--prompt-format", default="chat", choices=("chat", "raw"),
                     help="chat: the model's chat template, when it has one, as the probes ask (default); raw")
    sft.add_argument("--guard-tasks", default=None,
                     help="evaluation tasks the training texts must not overlap, comma-separated "
                          "(default: the recipe's; none for --data)")
    sft.add_argument("--allow-overlap", action="store_true",
                     help="train even when the leakage guard finds overlap (recorded in the run card)")
    gguf = kinds.add_parser("export-gguf", help="convert a LoRA adapter to llama.cpp's GGUF LoRA "
                            "(what llamacpp/... --model-args lora=DIR loads, converting on first use)")
    gguf.add_argument("adapter", metavar="DIR", help="a `tune` output folder or its adapter/ folder")
    gguf.add_argument("--model", default="llamacpp/smollm2-135m",
                      help="the base llamacpp/<alias or file.gguf> (default llamacpp/smollm2-135m)")
    gguf.add_argument("--output", metavar="FILE", help="the .gguf to write (default DIR/adapter.gguf)")


def run_tune_command(args: argparse.Namespace) -> None:
    if args.tune_command == "export-gguf":
        _export_gguf(args)
        return
    from llmassay.backends.base import parse_model_args
    from llmassay.tune.pipeline import run_sft
    from llmassay.tune.sft import SftConfig

    cfg = SftConfig(steps=args.steps, lr=args.lr, rank=args.rank, alpha=2 * args.rank, batch_size=args.batch_size,
                    max_length=args.max_length, seed=args.seed, save_every=args.save_every,
                    prompt_format=args.prompt_format)
    guard = tuple(t for t in args.guard_tasks.split(",") if t) if args.guard_tasks is not None else None
    console = _stdout()

    def show(entry: dict[str, Any]) -> None:
        console.print(f"step {entry['step']}/{cfg.steps}  loss {entry['loss']:.4f}  {entry['seconds']:.2f} s",
                      highlight=False)

    run = run_sft(args.model, parse_model_args(args.model_args), args.output_path, cfg, args.recipe, args.data,
                  guard, args.allow_overlap, show)
    console.print(json.dumps(run.card, indent=2), highlight=False, markup=False)
    console.print(f"adapter: {run.output / 'adapter'} (evaluate with --model-args ...,adapter={run.output / 'adapter'})",
                  highlight=False, markup=False)


def _export_gguf(args: argparse.Namespace) -> None:
    from pathlib import Path

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
