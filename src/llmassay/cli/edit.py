"""`llmassay edit`: ROME or MEMIT edits of an hf/ model written as a delta folder (`--model-args
edits=DIR` applies it), optionally with the CounterFact table before and after; causal
tracing (`--trace`), decay over many edits (`--decay`), one edit at a time (`--protocol single`). Argument
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
                      help="score efficacy, paraphrase, neighbourhood and fluency before and after")
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
    edit.add_argument("--protocol", choices=("sequential", "single"), default="sequential",
                      help="--evaluate: score with all edits applied (sequential) or each edit alone on the "
                           "original weights, restored between (single: CounterFact's protocol; no delta is written)")
    edit.add_argument("--rag", choices=("none", *RAG_KINDS), default="none",
                      help="--evaluate/--decay: a third column, the unedited model reading retrieval (bm25, dense) "
                           "from the country KB edited the same way (edit ids must be <ISO code>.<field>)")
    edit.add_argument("--rag-k", type=int, default=3, help="passages retrieved per prompt (--rag)")
    edit.add_argument("--decay", metavar="N,N,...", default=None,
                      help="apply the edits one after another and measure after the Nth (e.g. 1,10,100): retention of "
                           "the edits so far, general accuracy, neighbourhood; writes decay.json, decay.svg and "
                           "checkpoints/<N>/ (resumes after the last finished checkpoint)")
    edit.add_argument("--decay-task", default="mmlu_sample",
                      help="--decay: the general multiple-choice task (scored as the accuracy probe's acc)")
    edit.add_argument("--decay-limit", type=int, default=50, help="--decay: items of the general task (0: none)")


RAG_KINDS = ("bm25", "dense")


def run_edit_command(args: argparse.Namespace) -> None:
    from llmassay.backends.base import load_backend, parse_model_args
    from llmassay.editing.decay import parse_checkpoints
    from llmassay.editing.edits import read_edits
    from llmassay.editing.memit import memit_config, parse_layers
    from llmassay.editing.rome import RomeConfig

    if not args.model.startswith("hf/"):
        raise LlmassayError(f"edit: --model '{args.model}' must be an hf/ model (weights are edited in transformers)")
    if args.steps < 1 or (args.limit is not None and args.limit < 1) or args.rag_k < 1 or args.decay_limit < 0:
        raise LlmassayError("edit: --steps, --limit and --rag-k must be positive, --decay-limit not negative")
    if args.fluency_tokens < 0:
        raise LlmassayError("edit: --fluency-tokens must be 0 or more")
    checkpoints = parse_checkpoints(args.decay) if args.decay is not None else None
    if checkpoints and (args.evaluate or args.protocol != "sequential"):
        raise LlmassayError("edit: --decay measures at its checkpoints; leave out --evaluate and --protocol")
    if (checkpoints or args.protocol != "sequential") and (args.method != "rome" or args.trace):
        raise LlmassayError("edit: --decay and --protocol single apply ROME edits one at a time (--method rome --layer L)")
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
    if checkpoints and max(checkpoints) > len(edits):
        raise LlmassayError(f"edit: --decay's last checkpoint is {max(checkpoints)} edits; {args.edits} gives {len(edits)}")
    if args.rag != "none":  # a bad id fails before the model loads
        from llmassay.editing.retrieval import edited_index

        edited_index([(e.id, e) for e in edits], args.rag)
    general = None
    if checkpoints and args.decay_limit:
        from llmassay.tasks.loader import load_task

        general = load_task(args.decay_task, seed=args.seed).with_metrics(["acc"]).limited(args.decay_limit)
    model_args = parse_model_args(args.model_args)
    if "edits" in model_args:
        raise LlmassayError("edit: start from the unedited model (put every edit in one --edits file)")
    backend: Any = load_backend(args.model, **model_args)
    if args.trace:
        _trace(args, backend, edits)
    elif checkpoints:
        _decay(args, backend, edits[: max(checkpoints)], cfg, checkpoints, general)
    elif args.protocol == "single":
        _single(args, backend, edits, cfg)
    else:
        _sequential(args, backend, edits, cfg, method, layers)


def _scorer(backend: Any, fluency_tokens: int = 0) -> Any:
    """CounterFact rows of the backend's model as it is now (its prefix cache dropped first);
    with fluency_tokens, the n-gram entropy of that many greedy tokens per prompt too."""
    from llmassay.editing.scores import score_edits

    generate = backend.generate if fluency_tokens else None

    def score(edits: Any) -> list[dict[str, Any]]:
        backend.weights_changed()
        return score_edits(edits, backend.loglikelihood, generate, fluency_tokens)

    return score


def _rag(args: argparse.Namespace, backend: Any) -> Any:
    """Rows of the (unedited) model reading retrieval from the KB edited as the edits say."""
    from llmassay.editing.retrieval import edited_index, rag_rows

    def rows(edits: Any) -> list[dict[str, Any]]:
        backend.weights_changed()
        return rag_rows(edits, edited_index([(e.id, e) for e in edits], args.rag), args.rag_k, backend.loglikelihood)

    return rows if args.rag != "none" else None


def _sequential(args: argparse.Namespace, backend: Any, edits: list[Any], cfg: Any, method: str,
                layers: list[int]) -> None:
    from llmassay.editing.delta import save_delta
    from llmassay.editing.session import run_edits

    score, rag = _scorer(backend, args.fluency_tokens), _rag(args, backend)
    before = score(edits) if args.evaluate else None
    retrieval = rag(edits) if args.evaluate and rag else None
    console = _stdout()
    started, cpu_started = time.perf_counter(), time.process_time()
    run = run_edits(backend.model, backend.tokenizer, edits, cfg, json.dumps(backend.fingerprint(), sort_keys=True),
                    progress=lambda i, o: _progress(console, i, len(edits), o))
    timing = _timing(args.method, run, time.perf_counter() - started, time.process_time() - cpu_started)
    out = Path(args.output_path)
    manifest = _manifest(args, backend, cfg, edits, run.outcomes, method, layers,
                         **({"memit": dataclasses.asdict(run.memit)} if run.memit is not None else {}),
                         covariance_seconds=run.covariance_seconds, timing=timing, templates=run.templates)
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
    scoring = time.perf_counter()
    after = score(edits)
    timing["scoring_seconds"] = round(time.perf_counter() - scoring, 3)
    columns = {"unedited": before, "edited": after, **({"unedited + retrieval": retrieval} if retrieval else {})}
    mode = "all edits applied in sequence" if args.method == "rome" else "all edits applied in one MEMIT batch"
    _report(args, out, columns, run.outcomes, timing, f"{mode}, then every edit scored", layers)


def _single(args: argparse.Namespace, backend: Any, edits: list[Any], cfg: Any) -> None:
    from llmassay.editing.session import run_single

    score, rag = _scorer(backend, args.fluency_tokens), _rag(args, backend)
    before = score(edits)
    retrieval = rag(edits) if rag else None
    console = _stdout()
    started, cpu_started = time.perf_counter(), time.process_time()
    run = run_single(backend.model, backend.tokenizer, edits, cfg, json.dumps(backend.fingerprint(), sort_keys=True),
                     lambda e: score([e])[0], progress=lambda i, o: _progress(console, i, len(edits), o))
    timing = _timing(args.method, run, time.perf_counter() - started, time.process_time() - cpu_started)
    backend.weights_changed()
    columns = {"unedited": before, "edited": run.rows, **({"unedited + retrieval": retrieval} if retrieval else {})}
    out = Path(args.output_path)
    _report(args, out, columns, run.outcomes, timing,
            "each edit alone on the original weights, scored, then the weights restored (CounterFact's protocol)",
            [args.layer])
    console.print(f"wrote {out / 'evaluation.json'} (protocol single: no delta, the weights were restored)",
                  highlight=False)


def _progress(console: Any, i: int, n: int, o: Any) -> None:
    console.print(f"edit {i + 1}/{n} ({o.id}): NLL of the new object {o.nll_before} → {o.nll_after} "
                  f"in {o.seconds:.1f} s", highlight=False)


def _manifest(args: argparse.Namespace, backend: Any, cfg: Any, edits: list[Any], outcomes: list[Any], method: str,
              layers: list[int], **extra: Any) -> dict[str, Any]:
    return {"model": args.model, "model_args": args.model_args, "method": method, "layers": layers,
            **({"layer": args.layer} if args.method == "rome" else {}),
            "config": dataclasses.asdict(cfg), "base_weights_sha256": backend.weights_sha256(),
            "edits": [dataclasses.asdict(e) for e in edits],
            "outcomes": [o if isinstance(o, dict) else dataclasses.asdict(o) for o in outcomes], **extra}


def _report(args: argparse.Namespace, out: Path, columns: dict[str, Any], outcomes: list[Any], timing: dict[str, Any],
            mode: str, layers: list[int]) -> None:
    from llmassay.editing.scores import columns_table, fluency_change

    table = columns_table(columns, args.seed)
    change = fluency_change(columns["unedited"], columns["edited"])
    out.mkdir(parents=True, exist_ok=True)
    (out / "evaluation.json").write_text(json.dumps({
        "mode": mode, "method": args.method, "layers": layers, "protocol": args.protocol, "n_edits": len(outcomes),
        "rag": None if args.rag == "none" else {"kind": args.rag, "k": args.rag_k},
        "metrics": {k: {m: dataclasses.asdict(v) for m, v in t.items()} for k, t in table["columns"].items()},
        "paired_gaps": {k: {m: dataclasses.asdict(v) for m, v in t.items()} for k, t in table["gaps"].items()},
        "fluency_change": None if change is None else dataclasses.asdict(change),
        "timing": timing, "outcomes": [dataclasses.asdict(o) for o in outcomes], "rows": columns},
        indent=2) + "\n", encoding="utf-8")
    console = _stdout()
    label = "all applied" if args.protocol == "sequential" else "one at a time, weights restored"
    console.print(_table(table["columns"], f"{len(outcomes)} edits, {label} (95 % CIs over edits: Wilson for "
                                           "shares, bootstrap for fluency)"))
    console.print(_table(table["gaps"], "paired differences over edits (95 % bootstrap CIs)", signed=True))
    if change is not None:
        console.print(f"fluency (n-gram entropy, bits) edited − unedited: {change.value:+.3f} "
                      f"[{change.ci_low:+.3f}, {change.ci_high:+.3f}] over {change.n} edits (paired bootstrap)",
                      highlight=False)
    console.print(f"{timing['seconds_per_edit']:.1f} s per edit ({args.method}), {timing['edit_seconds']:.0f} s in all; "
                  f"key covariance {timing['covariance_seconds']:.1f} s (cached after the first run)", highlight=False)


def _timing(method: str, run: Any, total: float, cpu: float) -> dict[str, Any]:
    """Seconds per edit as measured when each edit (or MEMIT target) was computed — a target
    read from the cache keeps the seconds of the run that made it — plus this run's wall and
    CPU time (covariance and edits, scoring excluded: on a shared machine CPU seconds are the
    steadier figure)."""
    n = len(run.outcomes)
    work = sum(o.seconds for o in run.outcomes)
    out: dict[str, Any] = {"method": method, "n_edits": n}
    if getattr(run, "memit", None) is not None:
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


def _decay(args: argparse.Namespace, backend: Any, edits: list[Any], cfg: Any, checkpoints: tuple[int, ...],
           general: Any) -> None:
    from llmassay.editing.decay import DECAY_SVG, GENERAL_MEASURES, DecayHooks, DecayLog, decay_plot, run_decay
    from llmassay.editing.delta import apply_delta, save_delta
    from llmassay.editing.rome import apply_edit, context_templates, down_proj, param_name
    from llmassay.editing.session import covariance

    model, tok = backend.model, backend.tokenizer
    model_id = json.dumps(backend.fingerprint(), sort_keys=True)
    settings = {"model": args.model, "model_args": args.model_args, "base_weights_sha256": backend.weights_sha256(),
                "layer": args.layer, "config": dataclasses.asdict(cfg), "method": "ROME (sequential)",
                "general_task": args.decay_task if general is not None else None,
                "general_limit": len(general.samples) if general is not None else 0,
                "general_measures": ["acc", *GENERAL_MEASURES] if general is not None else [],
                "rag": None if args.rag == "none" else {"kind": args.rag, "k": args.rag_k}}
    out = Path(args.output_path)
    log = DecayLog.open(out, settings)
    console = _stdout()
    weight = down_proj(model, args.layer).weight
    original = weight.detach().clone()
    cov, cov_seconds = covariance(model, tok, cfg, model_id)
    log.doc.setdefault("covariance_seconds", cov_seconds)
    if "templates" not in log.doc:  # drawn once, on the unedited model, and kept for a resumed run
        log.doc["templates"] = context_templates(model, tok, cfg)
    templates = log.doc["templates"]
    if log.done:
        apply_delta(model, log.checkpoint_dir(log.done), backend.weights_sha256())
        console.print(f"resuming {out} after {log.done} edits", highlight=False)
    name = param_name(model, args.layer)

    def snapshot(directory: Path, n: int) -> None:
        save_delta(directory, {name: weight.detach() - original},
                   _manifest(args, backend, cfg, edits[:n], [], "ROME (sequential, decay run: outcomes in decay.json)",
                             [args.layer], n_edits=n, templates=templates))

    hooks = DecayHooks(apply=lambda e: apply_edit(model, tok, e, cov, cfg, templates), score=_scorer(backend),
                       snapshot=snapshot, general=_general(backend, general, args.seed) if general else None,
                       rag=_rag(args, backend))

    def plot(done: DecayLog) -> None:
        if done.doc["checkpoints"]:
            (out / DECAY_SVG).write_text(decay_plot(done.doc) + "\n", encoding="utf-8")

    run_decay(edits, checkpoints, hooks, log, args.seed, lambda text: console.print(text, highlight=False), plot)
    console.print(f"wrote {out / 'decay.json'}, {out / DECAY_SVG} and {out / 'checkpoints'}/<N>/ "
                  "(--model-args edits=DIR for the model after N edits)", highlight=False)


def _general(backend: Any, task: Any, seed: int) -> Any:
    """Per item of the general task on the model as it is now: the accuracy probe's own
    log-likelihood scoring (`acc`, the summed log-likelihood's argmax) and, from the same
    log-likelihoods, the gold option's log-likelihood and probability among the options
    (`editing.decay.general_item`), through an engine without a cache (the weights change
    between calls)."""
    from llmassay.editing.decay import general_item
    from llmassay.engine.engine import Engine
    from llmassay.probes.accuracy import AccuracyProbe
    from llmassay.probes.base import ProbeConfig

    probe = AccuracyProbe()

    def items() -> list[dict[str, Any]]:
        backend.weights_changed()
        rows = probe.evaluate(task, task.samples, Engine(backend), probe.options({}), ProbeConfig(seed))
        return [general_item(r["loglikelihoods"], r["target"], r["acc"]) for r in rows]

    return items


def _cell(m: Metric | None, signed: bool = False) -> str:
    if m is None:
        return "—"
    if m.n == 0:
        return "n/a"
    f = "+.2f" if signed else ".2f"
    return f"{m.value:{f}} [{m.ci_low:{f}}, {m.ci_high:{f}}]"


def _table(table: dict[str, dict[str, Metric]], title: str, signed: bool = False) -> Table:
    out = Table(title=title)
    out.add_column("score")
    for name in table:
        out.add_column(name)
    metrics = dict.fromkeys(m for t in table.values() for m in t)  # fluency: only where it was measured
    for metric in metrics:
        out.add_row(metric, *(_cell(t.get(metric), signed) for t in table.values()))
    return out
