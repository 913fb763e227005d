"""`llmassay edit`: ROME edits of an hf/ model written as a delta folder (`--model-args
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
    edit = sub.add_parser("edit", help="change facts in an hf/ model's weights (ROME) and write the delta")
    edit.add_argument("--model", required=True, help="hf/<dir or hub id> (a Llama-family model)")
    edit.add_argument("--model-args", default=None, help="k=v,... for the hf backend (e.g. gguf_file=NAME)")
    edit.add_argument("--edits", required=True, metavar="FILE.jsonl",
                      help='one edit per line: {"subject", "prompt", "old", "new"} (optional paraphrases, neighbourhood)')
    edit.add_argument("--layer", type=int, required=True, help="the MLP layer whose down_proj is edited")
    output_option(edit, "--output-path", required=True, help="the folder for delta.safetensors and edits.json")
    edit.add_argument("--limit", type=int, default=None, help="only the first N edits")
    edit.add_argument("--steps", type=int, default=25, help="gradient steps for each value vector (ROME: 20)")
    edit.add_argument("--seed", type=int, default=0, help="seed of the prefixes the model writes")
    edit.add_argument("--evaluate", action="store_true",
                      help="score efficacy, paraphrase and neighbourhood before and after (all edits applied)")
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
    from llmassay.editing.rome import RomeConfig

    if not args.model.startswith("hf/"):
        raise LlmassayError(f"edit: --model '{args.model}' must be an hf/ model (weights are edited in transformers)")
    if args.steps < 1 or (args.limit is not None and args.limit < 1) or args.rag_k < 1 or args.decay_limit < 0:
        raise LlmassayError("edit: --steps, --limit and --rag-k must be positive, --decay-limit not negative")
    checkpoints = parse_checkpoints(args.decay) if args.decay is not None else None
    if checkpoints and (args.evaluate or args.protocol != "sequential"):
        raise LlmassayError("edit: --decay measures at its checkpoints; leave out --evaluate and --protocol")
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
    cfg = RomeConfig(layer=args.layer, steps=args.steps, seed=args.seed)
    if checkpoints:
        _decay(args, backend, edits[: max(checkpoints)], cfg, checkpoints, general)
    elif args.protocol == "single":
        _single(args, backend, edits, cfg)
    else:
        _sequential(args, backend, edits, cfg)


def _scorer(backend: Any) -> Any:
    """CounterFact rows of the backend's model as it is now (its prefix cache dropped first)."""
    from llmassay.editing.scores import score_edits

    def score(edits: Any) -> list[dict[str, Any]]:
        backend.weights_changed()
        return score_edits(edits, backend.loglikelihood)

    return score


def _rag(args: argparse.Namespace, backend: Any) -> Any:
    """Rows of the (unedited) model reading retrieval from the KB edited as the edits say."""
    from llmassay.editing.retrieval import edited_index, rag_rows

    def rows(edits: Any) -> list[dict[str, Any]]:
        backend.weights_changed()
        return rag_rows(edits, edited_index([(e.id, e) for e in edits], args.rag), args.rag_k, backend.loglikelihood)

    return rows if args.rag != "none" else None


def _sequential(args: argparse.Namespace, backend: Any, edits: list[Any], cfg: Any) -> None:
    from llmassay.editing.delta import save_delta
    from llmassay.editing.session import run_edits

    score, rag = _scorer(backend), _rag(args, backend)
    before = score(edits) if args.evaluate else None
    retrieval = rag(edits) if args.evaluate and rag else None
    console = _stdout()
    started = time.perf_counter()
    run = run_edits(backend.model, backend.tokenizer, edits, cfg, json.dumps(backend.fingerprint(), sort_keys=True),
                    progress=lambda i, o: _progress(console, i, len(edits), o))
    total = time.perf_counter() - started
    out = Path(args.output_path)
    sha = save_delta(out, run.deltas, _manifest(args, backend, cfg, edits, run.outcomes, "ROME (sequential)",
                                                covariance_seconds=run.covariance_seconds, templates=run.templates))
    console.print(f"wrote {out} (delta sha256 {sha[:12]}…): apply with --model-args edits={out}", highlight=False)
    if before is None:
        return
    after = score(edits)
    columns = {"unedited": before, "edited": after, **({"unedited + retrieval": retrieval} if retrieval else {})}
    _report(args, out, columns, run.outcomes, run.covariance_seconds, total,
            "all edits applied in sequence, then every edit scored")


def _single(args: argparse.Namespace, backend: Any, edits: list[Any], cfg: Any) -> None:
    from llmassay.editing.session import run_single

    score, rag = _scorer(backend), _rag(args, backend)
    before = score(edits)
    retrieval = rag(edits) if rag else None
    console = _stdout()
    started = time.perf_counter()
    run = run_single(backend.model, backend.tokenizer, edits, cfg, json.dumps(backend.fingerprint(), sort_keys=True),
                     lambda e: score([e])[0], progress=lambda i, o: _progress(console, i, len(edits), o))
    total = time.perf_counter() - started
    backend.weights_changed()
    columns = {"unedited": before, "edited": run.rows, **({"unedited + retrieval": retrieval} if retrieval else {})}
    out = Path(args.output_path)
    _report(args, out, columns, run.outcomes, run.covariance_seconds, total,
            "each edit alone on the original weights, scored, then the weights restored (CounterFact's protocol)")
    console.print(f"wrote {out / 'evaluation.json'} (protocol single: no delta, the weights were restored)",
                  highlight=False)


def _progress(console: Any, i: int, n: int, o: Any) -> None:
    console.print(f"edit {i + 1}/{n} ({o.id}): NLL of the new object {o.nll_before} → {o.nll_after} "
                  f"in {o.seconds:.1f} s", highlight=False)


def _manifest(args: argparse.Namespace, backend: Any, cfg: Any, edits: list[Any], outcomes: list[Any], method: str,
              **extra: Any) -> dict[str, Any]:
    return {"model": args.model, "model_args": args.model_args, "layer": args.layer, "method": method,
            "config": dataclasses.asdict(cfg), "base_weights_sha256": backend.weights_sha256(),
            "edits": [dataclasses.asdict(e) for e in edits],
            "outcomes": [o if isinstance(o, dict) else dataclasses.asdict(o) for o in outcomes], **extra}


def _report(args: argparse.Namespace, out: Path, columns: dict[str, Any], outcomes: list[Any], cov_seconds: float,
            total: float, mode: str) -> None:
    from llmassay.editing.scores import columns_table

    table = columns_table(columns, args.seed)
    per_edit = sum(o.seconds for o in outcomes) / len(outcomes)
    timing = {"seconds_per_edit": round(per_edit, 3), "covariance_seconds": cov_seconds,
              "total_seconds": round(total, 3)}
    out.mkdir(parents=True, exist_ok=True)
    (out / "evaluation.json").write_text(json.dumps({
        "mode": mode, "protocol": args.protocol, "n_edits": len(outcomes),
        "rag": None if args.rag == "none" else {"kind": args.rag, "k": args.rag_k},
        "metrics": {k: {m: dataclasses.asdict(v) for m, v in t.items()} for k, t in table["columns"].items()},
        "paired_gaps": {k: {m: dataclasses.asdict(v) for m, v in t.items()} for k, t in table["gaps"].items()},
        "timing": timing, "outcomes": [dataclasses.asdict(o) for o in outcomes], "rows": columns},
        indent=2) + "\n", encoding="utf-8")
    console = _stdout()
    label = "all applied" if args.protocol == "sequential" else "one at a time, weights restored"
    console.print(_table(table["columns"], f"{len(outcomes)} edits, {label} (95 % Wilson CIs over edits)"))
    console.print(_table(table["gaps"], "paired differences over edits (95 % bootstrap CIs)", signed=True))
    console.print(f"{per_edit:.1f} s per edit; key covariance {cov_seconds:.1f} s (cached after the first run)",
                  highlight=False)


def _decay(args: argparse.Namespace, backend: Any, edits: list[Any], cfg: Any, checkpoints: tuple[int, ...],
           general: Any) -> None:
    from llmassay.editing.decay import DECAY_SVG, DecayHooks, DecayLog, decay_plot, run_decay
    from llmassay.editing.delta import apply_delta, save_delta
    from llmassay.editing.rome import apply_edit, context_templates, down_proj, param_name
    from llmassay.editing.session import covariance

    model, tok = backend.model, backend.tokenizer
    model_id = json.dumps(backend.fingerprint(), sort_keys=True)
    settings = {"model": args.model, "model_args": args.model_args, "base_weights_sha256": backend.weights_sha256(),
                "layer": args.layer, "config": dataclasses.asdict(cfg), "method": "ROME (sequential)",
                "general_task": args.decay_task if general is not None else None,
                "general_limit": len(general.samples) if general is not None else 0,
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
                             n_edits=n, templates=templates))

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
    """0/1 per item of the general task on the model as it is now: the accuracy probe's own
    log-likelihood scoring (`acc`, the summed log-likelihood's argmax), through an engine
    without a cache (the weights change between calls)."""
    from llmassay.engine.engine import Engine
    from llmassay.probes.accuracy import AccuracyProbe
    from llmassay.probes.base import ProbeConfig

    probe = AccuracyProbe()

    def correct() -> list[int]:
        backend.weights_changed()
        rows = probe.evaluate(task, task.samples, Engine(backend), probe.options({}), ProbeConfig(seed))
        return [int(bool(r["acc"])) for r in rows]

    return correct


def _cell(m: Metric, signed: bool = False) -> str:
    if m.n == 0:
        return "n/a"
    f = "+.2f" if signed else ".2f"
    return f"{m.value:{f}} [{m.ci_low:{f}}, {m.ci_high:{f}}]"


def _table(table: dict[str, dict[str, Metric]], title: str, signed: bool = False) -> Table:
    out = Table(title=title)
    out.add_column("score")
    for name in table:
        out.add_column(name)
    for metric in next(iter(table.values())):
        out.add_row(metric, *(_cell(t[metric], signed) for t in table.values()))
    return out
