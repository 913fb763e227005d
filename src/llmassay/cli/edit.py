"""`llmassay edit`: ROME or MEMIT edits of an hf/ model written as a delta folder (`--model-args
edits=DIR` applies it), optionally with the CounterFact table before and after. Argument
wiring and output only; the work is in `llmassay.editing`."""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path
from typing import Any

from rich.table import Table

from llmassay.cli.spelling import output_option
from llmassay.terminal import stdout_console as _stdout
from llmassay.types import LlmassayError, Metric


def add_edit_commands(sub: Any) -> None:
    edit = sub.add_parser("edit", help="change facts in an hf/ model's weights (ROME or MEMIT) and write the delta")
    edit.add_argument("--model", required=True, help="hf/<dir or hub id> (a Llama-family model)")
    edit.add_argument("--model-args", default=None, help="k=v,... for the hf backend (e.g. gguf_file=NAME)")
    edit.add_argument("--edits", required=True, metavar="FILE.jsonl",
                      help='one edit per line: {"subject", "prompt", "old", "new"} (optional paraphrases, neighbourhood)')
    edit.add_argument("--method", choices=("rome", "memit"), default="rome",
                      help="rome: one rank-one edit after another in one layer; memit: all edits at once over --layers")
    edit.add_argument("--layer", type=int, default=None, help="rome: the MLP layer whose down_proj is edited (with --trace: a layer to mark on the plot)")
    edit.add_argument("--layers", default=None, metavar="2,3,4,5",
                      help="memit: the MLP layers the update is spread over (ascending; the targets are set at the last)")
    edit.add_argument("--mom2-update-weight", type=float, default=None, metavar="LAMBDA",
                      help="memit: λ, the weight of the key covariance (default: GPT-J's 15,000 × key width / 16,384)")
    output_option(edit, "--output-path", required=True, help="the folder for delta.safetensors and edits.json")
    edit.add_argument("--limit", type=int, default=None, help="only the first N edits")
    edit.add_argument("--steps", type=int, default=25, help="gradient steps for each value vector (ROME: 20)")
    edit.add_argument("--seed", type=int, default=0, help="seed of the prefixes the model writes (with --trace: of the noise)")
    edit.add_argument("--evaluate", action="store_true",
                      help="score efficacy, paraphrase, neighbourhood and fluency before and after (all edits applied)")
    edit.add_argument("--fluency-tokens", type=int, default=50,
                      help="with --evaluate: greedy tokens generated per prompt for the n-gram entropy (0: none)")
    trace = edit.add_argument_group("causal tracing (--trace: find the layer instead of editing)")
    trace.add_argument("--trace", action="store_true",
                       help="trace the edits' true facts (ROME §2) and write trace.json and trace.svg; edits nothing")
    trace.add_argument("--samples", type=int, default=10, help="noise draws per prompt (ROME: 10)")
    trace.add_argument("--noise", type=float, default=3.0, help="noise scale in σ of the subjects' embeddings (ROME: 3)")
    trace.add_argument("--window", type=int, default=10, help="MLP layers restored together (ROME: 10)")
    trace.add_argument("--trace-unknown", action="store_true",
                       help="also trace facts the model does not give (its top token is not the true object's)")


def run_edit_command(args: argparse.Namespace) -> None:
    from llmassay.backends.base import load_backend, parse_model_args
    from llmassay.editing.delta import save_delta
    from llmassay.editing.edits import read_edits
    from llmassay.editing.memit import memit_config, parse_layers
    from llmassay.editing.rome import RomeConfig
    from llmassay.editing.scores import fluency_change, score_edits, summarise
    from llmassay.editing.session import run_edits

    if not args.model.startswith("hf/"):
        raise LlmassayError(f"edit: --model '{args.model}' must be an hf/ model (weights are edited in transformers)")
    if args.steps < 1 or (args.limit is not None and args.limit < 1):
        raise LlmassayError("edit: --steps and --limit must be positive")
    if args.fluency_tokens < 0:
        raise LlmassayError("edit: --fluency-tokens must be 0 or more")
    cfg: Any = None
    layers: list[int] = []
    method = ""
    if args.trace:
        if args.method != "rome" or args.layers is not None:
            raise LlmassayError("edit --trace: finds a layer; --method memit and --layers are for editing")
    elif args.method == "memit":
        if args.layer is not None or args.layers is None:
            raise LlmassayError("edit: --method memit takes --layers (e.g. 2,3,4,5), not --layer")
        if args.mom2_update_weight is not None and args.mom2_update_weight <= 0:
            raise LlmassayError("edit: --mom2-update-weight must be positive")
        cfg = memit_config(parse_layers(args.layers), args.steps, args.seed, args.mom2_update_weight)
        layers, method = list(cfg.layers), "MEMIT (one batch over several layers)"
    else:
        if args.layer is None or args.layers is not None or args.mom2_update_weight is not None:
            raise LlmassayError("edit: --method rome takes --layer L (or --trace to find one; --layers and "
                                "--mom2-update-weight are memit's)")
        cfg = RomeConfig(layer=args.layer, steps=args.steps, seed=args.seed)
        layers, method = [args.layer], "ROME (sequential)"
    edits = read_edits(args.edits)[: args.limit]
    model_args = parse_model_args(args.model_args)
    if "edits" in model_args:
        raise LlmassayError("edit: start from the unedited model (put every edit in one --edits file)")
    backend: Any = load_backend(args.model, **model_args)
    if args.trace:
        _trace(args, backend, edits)
        return
    generate = backend.generate if args.fluency_tokens else None
    before = score_edits(edits, backend.loglikelihood, generate, args.fluency_tokens) if args.evaluate else None
    console = _stdout()
    started, cpu_started = time.perf_counter(), time.process_time()
    run = run_edits(backend.model, backend.tokenizer, edits, cfg, json.dumps(backend.fingerprint(), sort_keys=True),
                    progress=lambda i, o: console.print(
                        f"edit {i + 1}/{len(edits)} ({o.id}): NLL of the new object {o.nll_before} → {o.nll_after} "
                        f"in {o.seconds:.1f} s", highlight=False))
    timing = _timing(args.method, run, time.perf_counter() - started, time.process_time() - cpu_started)
    out = Path(args.output_path)
    manifest = {"model": args.model, "model_args": args.model_args, "method": method, "layers": layers,
                **({"layer": args.layer} if args.method == "rome" else {}),
                "config": dataclasses.asdict(cfg), "base_weights_sha256": backend.weights_sha256(),
                "edits": [dataclasses.asdict(e) for e in edits],
                "outcomes": [dataclasses.asdict(o) for o in run.outcomes],
                **({"memit": dataclasses.asdict(run.memit)} if run.memit is not None else {}),
                "covariance_seconds": run.covariance_seconds, "timing": timing, "templates": run.templates}
    for step in run.memit.steps if run.memit is not None else ():
        console.print(f"layer {step.layer}: mean ‖z − h‖ {step.residual_before:.3f} before its update "
                      f"(‖ΔW‖ {step.update_norm:.3f})", highlight=False)
    if run.memit is not None:
        console.print(f"mean ‖z − h‖ after all layers: {run.memit.residual_after:.3f} (λ = {run.memit.lam:.0f})",
                      highlight=False)
    sha = save_delta(out, run.deltas, manifest)
    console.print(f"wrote {out} (delta sha256 {sha[:12]}…): apply with --model-args edits={out}", highlight=False)
    if before is None:
        return
    backend.weights_changed()
    scoring = time.perf_counter()
    after = score_edits(edits, backend.loglikelihood, generate, args.fluency_tokens)
    timing["scoring_seconds"] = round(time.perf_counter() - scoring, 3)
    table = {"unedited": summarise(before), "edited": summarise(after)}
    change = fluency_change(before, after)
    mode = "all edits applied in sequence" if args.method == "rome" else "all edits applied in one MEMIT batch"
    (out / "evaluation.json").write_text(json.dumps({
        "mode": f"{mode}, then every edit scored", "method": args.method, "layers": layers, "n_edits": len(edits),
        "metrics": {k: {m: dataclasses.asdict(v) for m, v in t.items()} for k, t in table.items()},
        "fluency_change": None if change is None else dataclasses.asdict(change),
        "timing": timing, "rows": {"unedited": before, "edited": after}}, indent=2) + "\n", encoding="utf-8")
    console.print(_table(table, len(edits)))
    if change is not None:
        console.print(f"fluency (n-gram entropy, bits) edited − unedited: {change.value:+.3f} "
                      f"[{change.ci_low:+.3f}, {change.ci_high:+.3f}] over {change.n} edits (paired bootstrap)",
                      highlight=False)
    console.print(f"{timing['seconds_per_edit']:.1f} s per edit ({args.method}), {timing['edit_seconds']:.0f} s in all; "
                  f"key covariance {run.covariance_seconds:.1f} s (cached after the first run)", highlight=False)



def _timing(method: str, run: Any, total: float, cpu: float) -> dict[str, Any]:
    """Seconds per edit as measured when each edit (or MEMIT target) was computed — a target
    read from the cache keeps the seconds of the run that made it — plus this run's wall and
    CPU time (covariance and edits, scoring excluded: on a shared machine CPU seconds are the
    steadier figure)."""
    n = len(run.outcomes)
    work = sum(o.seconds for o in run.outcomes)
    out: dict[str, Any] = {"method": method, "n_edits": n}
    if run.memit is not None:
        update = sum(s.seconds for s in run.memit.steps)
        out.update(target_seconds=round(work, 3), update_seconds=round(update, 3),
                   targets_from_cache=run.memit.z_from_cache)
        work += update
    return {**out, "seconds_per_edit": round(work / n, 3), "edit_seconds": round(work, 3),
            "covariance_seconds": run.covariance_seconds, "wall_seconds": round(total, 3),
            "cpu_seconds": round(cpu, 3)}


def _trace(args: argparse.Namespace, backend: Any, edits: list[Any]) -> None:
    """`--trace`: causal traces of the edits' true facts, trace.json and trace.svg (no edit)."""
    from llmassay.editing.plots import trace_figure
    from llmassay.editing.tracing import TraceConfig, trace

    if args.samples < 1 or args.window < 1 or args.noise <= 0:
        raise LlmassayError("edit --trace: --samples and --window must be at least 1 and --noise positive")
    cfg = TraceConfig(samples=args.samples, noise_factor=args.noise, window=args.window, seed=args.seed,
                      known_only=not args.trace_unknown)
    console = _stdout()

    def progress(i: int, outcome: Any) -> None:
        what = (f"P({outcome.answer.strip()}) clean {outcome.p_clean:.3f}, corrupted {outcome.p_corrupt:.4f}"
                if hasattr(outcome, "p_clean") else f"skipped: the model's top token is '{outcome['top'].strip()}'")
        console.print(f"trace {i + 1}/{len(edits)} ({edits[i].id}): {what}", highlight=False)

    result = trace(backend.model, backend.tokenizer, edits, cfg, args.model, progress)
    if not result.prompts:
        raise LlmassayError("edit --trace: the model gives none of these facts (--trace-unknown traces them anyway)")
    out = Path(args.output_path)
    out.mkdir(parents=True, exist_ok=True)
    data = result.to_json()
    data["model_args"] = args.model_args
    (out / "trace.json").write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
    (out / "trace.svg").write_text(trace_figure(data, args.layer) + "\n", encoding="utf-8")
    layer = data["suggested_layer"]
    peak = result.mlp_at_subject_last()[layer["layer"]]
    console.print(f"{len(result.prompts)} facts traced ({len(result.skipped)} skipped) in {result.seconds:.0f} s; "
                  f"MLP effect at the subject's last token peaks at layer {layer['layer']} "
                  f"(bootstrap {layer['ci_low']:.0f}–{layer['ci_high']:.0f}): {_cell(peak)}; "
                  f"wrote {out}/trace.json and trace.svg", highlight=False)


def _cell(m: Metric) -> str:
    return "n/a" if m.n == 0 else f"{m.value:.2f} [{m.ci_low:.2f}, {m.ci_high:.2f}]"


def _table(table: dict[str, dict[str, Metric]], n: int) -> Table:
    out = Table(title=f"{n} edits, all applied (95 % CIs over edits: Wilson for shares, bootstrap for fluency)")
    out.add_column("score")
    for name in table:
        out.add_column(name)
    for metric in next(iter(table.values())):
        out.add_row(metric, *(_cell(t[metric]) for t in table.values()))
    return out
