"""`llmassay loadtest` (and the efficiency commands that follow): argument wiring and
output only; the work is in `llmassay.efficiency` (imported lazily)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from llmassay.backends.base import parse_model_args
from llmassay.cli.spelling import output_option
from llmassay.terminal import fitted_tables
from llmassay.terminal import stdout_console as _stdout
from llmassay.types import LlmassayError, bound_text

EFFICIENCY_COMMANDS = ("loadtest", "quantize-sweep", "pareto", "attention-cost")


def _numbers(kind: type, flag: str) -> Any:
    def parse(text: str) -> tuple[Any, ...]:
        try:
            return tuple(kind(v) for v in text.split(",") if v.strip())
        except ValueError:
            raise argparse.ArgumentTypeError(f"{flag}: comma-separated numbers, not {text!r}") from None

    return parse


def add_efficiency_commands(sub: Any) -> None:
    lt = sub.add_parser("loadtest", help="load-test a local OpenAI-compatible endpoint (closed loop and Poisson)")
    lt.add_argument("--model", required=True, help="openai/NAME (the served model's name)")
    lt.add_argument("--model-args", default=None, help="base_url=http://127.0.0.1:PORT/v1[,api_key_env=VAR]")
    lt.add_argument("--concurrency", type=_numbers(int, "--concurrency"), default=(1, 2, 4, 8),
                    help="closed-loop levels (default 1,2,4,8; empty string: none)")
    lt.add_argument("--rate", type=_numbers(float, "--rate"), default=(), help="Poisson arrival rates, requests/s")
    lt.add_argument("--requests", type=int, default=32, help="requests per level (default 32)")
    lt.add_argument("--max-tokens", type=int, default=16, help="output tokens per request (default 16)")
    lt.add_argument("--task", default="arith_sample", help="prompts come from this task (default arith_sample)")
    lt.add_argument("--stream", action="store_true", help="stream answers: measures TTFT and TPOT")
    lt.add_argument("--slo-e2e", type=float, default=2.0, help="goodput SLO on end-to-end latency, s (default 2)")
    lt.add_argument("--slo-ttft", type=float, default=None, help="goodput SLO on TTFT, s (needs --stream)")
    lt.add_argument("--max-seconds", type=float, default=300.0, help="each level stops after this (default 300)")
    lt.add_argument("--timeout", type=float, default=60.0, help="per-request timeout, s (default 60)")
    lt.add_argument("--seed", type=int, default=0, help="seed of the Poisson arrival times")
    lt.add_argument("--output-path", required=True, metavar="DIR",
                    help="folder for loadtest.json and loadtest.svg")

    qs = sub.add_parser("quantize-sweep", help="quantised variants of a GGUF: KL divergence, accuracy, brittleness, size")
    qs.add_argument("--model", required=True, help="a GGUF: an alias (smollm2-135m) or a path, optionally llamacpp/…")
    qs.add_argument("--types", default="q8_0,q5_k_m,q4_k_m,q3_k_m,q2_k", help="llama.cpp quantisation types")
    qs.add_argument("--task", default="mmlu_sample", help="task for accuracy and brittleness (default mmlu_sample)")
    qs.add_argument("--limit", type=int, default=40, help="items of the task (default 40)")
    qs.add_argument("--text-tokens", type=int, default=256, help="tokens of the fixed text for KL (default 256)")
    qs.add_argument("--no-brittleness", action="store_true", help="accuracy only")
    qs.add_argument("--perturbations", default=None, help="brittleness perturbations (default: its default set)")
    qs.add_argument("--efficiency", action="store_true", help="also time each variant (efficiency probe): "
                    "accuracy vs decode tokens/s and vs energy in quantize.html")
    qs.add_argument("--model-args", default=None, help="llama.cpp args for the task runs (e.g. n_threads=1)")
    qs.add_argument("--output-path", required=True, metavar="DIR",
                    help="folder for the variants, quantize.json/.md/.html and pareto.svg")

    pa = sub.add_parser("pareto", help="quality against cost across run directories: an HTML page with the frontier")
    pa.add_argument("runs", nargs="+", help="run directories (or results files), one point each")
    pa.add_argument("--task", required=True, help="the task all runs share")
    pa.add_argument("--quality", default="accuracy.acc", help="probe.metric, better high (default accuracy.acc)")
    pa.add_argument("--cost", default="efficiency.decode_tps",
                    help="probe.metric (default efficiency.decode_tps; rates ending tps/rps are better high, "
                         "anything else low: efficiency.energy_wh_per_1k, efficiency.e2e_s[p50], …)")
    pa.add_argument("--labels", default=None, help="comma-separated point labels (default: the runs' model specs)")
    output_option(pa, "--output", "--output-path", required=True, help="the HTML file to write")

    ac = sub.add_parser("attention-cost", help="prefill time per token and KV-cache memory against context length, "
                        "fitted to a + b·n + c·n² (llama.cpp models)")
    ac.add_argument("--model", action="append", required=True,
                    help="llamacpp/ALIAS or a GGUF path; repeat for several models on one plot")
    ac.add_argument("--lengths", default="256,512,1k,2k,4k,8k",
                    help="context lengths n in tokens, comma-separated (k = 1024; default 256,512,1k,2k,4k,8k)")
    ac.add_argument("--repeats", type=int, default=3, help="timed prefills per model and length, at least 2 (default 3)")
    ac.add_argument("--threads", type=int, default=1, help="llama.cpp threads (default 1)")
    ac.add_argument("--n-batch", type=int, default=512, help="tokens per llama_decode call; n_ubatch = min(this, 512)")
    ac.add_argument("--flash-attn", action="store_true",
                    help="flash attention on (default off, as llama-cpp-python and llmassay's backend run)")
    ac.add_argument("--swa-full", default="default", choices=("default", "true", "false", "both"),
                    help="full-size KV cache for sliding-window layers (default: llama.cpp's, true; both: time each way)")
    ac.add_argument("--seed", type=int, default=0, help="seed of the random prompt tokens and the bootstrap")
    ac.add_argument("--output-path", required=True, metavar="DIR",
                    help="folder for attention_cost.json, attention_cost.md and attention_cost.svg")


def run_efficiency_command(args: argparse.Namespace) -> bool:
    """Runs an efficiency command; False when the command is someone else's."""
    if args.command == "loadtest":
        _loadtest(args)
        return True
    if args.command == "quantize-sweep":
        _quantize_sweep(args)
        return True
    if args.command == "pareto":
        _pareto(args)
        return True
    if args.command == "attention-cost":
        _attention_cost(args)
        return True
    return False


def _quantize_sweep(args: argparse.Namespace) -> None:
    from llmassay.efficiency.quantize import file_type, make_variants, score_variants, source_note
    from llmassay.efficiency.pareto import write_pareto_html
    from llmassay.efficiency.report import pareto_points, quantize_markdown, variant_panels
    from llmassay.efficiency.plots import pareto
    from llmassay.models import resolve_model_path

    source = resolve_model_path(args.model.removeprefix("llamacpp/"))
    types = tuple(t.strip() for t in args.types.split(",") if t.strip())
    out = Path(args.output_path)
    note = source_note(file_type(source))
    variants = make_variants(source, types, out / "variants", args.text_tokens)
    score_variants(variants, args.task, args.limit, out, brittleness=not args.no_brittleness,
                   perturbations=args.perturbations, efficiency=args.efficiency,
                   model_args=parse_model_args(args.model_args))
    record = {"source": str(source), "note": note, "task": args.task, "limit": args.limit,
              "text_tokens": args.text_tokens, "perturbations": args.perturbations, "variants": [v.as_dict() for v in variants]}
    (out / "quantize.json").write_text(json.dumps(record, indent=1), encoding="utf-8")
    table = quantize_markdown(variants, note, args.task)
    (out / "quantize.md").write_text(table + "\n", encoding="utf-8")
    points = pareto_points(variants)
    if points:
        (out / "pareto.svg").write_text(pareto(points, "file size, MB (exact)", f"accuracy on {args.task} (95% CI)"),
                                        encoding="utf-8")
    write_pareto_html(out / "quantize.html", f"quantize-sweep of {source.name}", variant_panels(variants, args.task),
                      [note])
    _stdout().print(table, markup=False, soft_wrap=True)
    _stdout().print(f"quantize-sweep: {out / 'quantize.json'}, {out / 'quantize.html'}", markup=False, soft_wrap=True)


def _pareto(args: argparse.Namespace) -> None:
    from llmassay.efficiency.pareto import COST_LABELS, points_from_runs, write_pareto_html

    labels = [s.strip() for s in args.labels.split(",")] if args.labels else None
    if labels is not None and len(labels) != len(args.runs):
        raise LlmassayError(f"pareto: --labels has {len(labels)} labels for {len(args.runs)} runs")
    points = points_from_runs(args.runs, args.task, args.quality, args.cost, labels)
    panel = {"title": f"{args.quality} vs {args.cost} on {args.task}", "quality": f"{args.quality} (95% CI)",
             "cost": COST_LABELS.get(args.cost, f"{args.cost} (95% CI)"), "points": points}
    path = write_pareto_html(Path(args.output), f"Pareto: {args.task}", [panel])
    for p in points:
        _stdout().print(f"{'*' if p.on_frontier else ' '} {p.label}: {args.quality} {p.quality[0]:.3f} "
                        f"[{p.quality[1]:.3f}, {p.quality[2]:.3f}], {args.cost} {p.cost[0]:.3g} "
                        f"[{p.cost[1]:.3g}, {p.cost[2]:.3g}]", markup=False, soft_wrap=True)
    _stdout().print(f"pareto: {path} (* on the frontier)", markup=False, soft_wrap=True)


def _loadtest(args: argparse.Namespace) -> None:
    from llmassay.backends.openai_compat import _endpoint
    from llmassay.efficiency.loadtest import LoadPlan, run_loadtest
    from llmassay.efficiency.plots import loadtest_curves
    from llmassay.tasks.loader import load_task

    kind, _, name = args.model.partition("/")
    if kind != "openai" or not name:
        raise LlmassayError(f"loadtest: --model must be openai/NAME, not {args.model!r}")
    margs = parse_model_args(args.model_args)
    if "base_url" not in margs:
        raise LlmassayError("loadtest: --model-args must give base_url=http://127.0.0.1:PORT/v1")
    base_url, key, _ = _endpoint(str(margs["base_url"]), str(margs.get("api_key_env") or "") or None)
    prompts = tuple(s.prompt for s in load_task(args.task).samples)
    plan = LoadPlan(
        base_url=base_url, model=name, prompts=prompts, max_tokens=args.max_tokens,
        concurrency=args.concurrency, rates=args.rate, requests=args.requests, slo_e2e_s=args.slo_e2e,
        slo_ttft_s=args.slo_ttft, stream=args.stream, timeout_s=args.timeout, max_seconds=args.max_seconds,
        seed=args.seed, api_key=key,
    )
    levels = run_loadtest(plan)
    out = Path(args.output_path)
    out.mkdir(parents=True, exist_ok=True)
    record = {"plan": {k: v for k, v in plan.__dict__.items() if k not in ("api_key", "prompts")},
              "task": args.task, "levels": [lv.as_dict() for lv in levels]}
    (out / "loadtest.json").write_text(json.dumps(record, indent=1), encoding="utf-8")
    if any("throughput_rps" in lv.metrics for lv in levels):
        (out / "loadtest.svg").write_text(loadtest_curves(levels), encoding="utf-8")
    _print(levels)
    _stdout().print(f"loadtest: {out / 'loadtest.json'}", markup=False, soft_wrap=True)


def _print(levels: list[Any]) -> None:
    """One row per level; with --stream, TTFT percentiles and TPOT too. Throughput and
    Little's law count successful requests only (`failed` says how many were not)."""
    streamed = any("ttft_s[p50]" in lv.metrics for lv in levels)
    headers = ["mode", "level", "req/s", "goodput", "E2E p50 s", "E2E p95 s",
               *(("TTFT p50 s", "TTFT p95 s", "TPOT s") if streamed else ()), "failed", "timed out", "L", "X·W", "L/XW"]

    def ci(m: Any) -> str:
        return f"{m.value:.3f} [{bound_text(m.ci_low, '.3f')}, {bound_text(m.ci_high, '.3f')}]" if m else "-"

    rows = []
    for lv in levels:
        m, little = lv.metrics, lv.little
        rows.append([
            lv.mode, f"{lv.level:g}", f"{m['throughput_rps'].value:.2f}" if "throughput_rps" in m else "-",
            f"{m['goodput_rps'].value:.2f}" if "goodput_rps" in m else "-", ci(m.get("e2e_s[p50]")),
            ci(m.get("e2e_s[p95]")),
            *((ci(m.get("ttft_s[p50]")), ci(m.get("ttft_s[p95]")), ci(m.get("tpot_s"))) if streamed else ()),
            f"{m['failed'].value:.0f}", f"{m['timed_out'].value:.0f}" if "timed_out" in m else "-",
            f"{little.get('L', float('nan')):.2f}", f"{little.get('X_W', float('nan')):.2f}",
            f"{little.get('ratio', float('nan')):.3f}",
        ])
    console = _stdout()
    title = ("load test (percentiles with 95% order-statistic CIs over requests; timed-out requests counted at "
             "their timeout in E2E; req/s, goodput, TTFT, TPOT and Little's law over successful requests only)")
    for table in fitted_tables(title, headers, rows, console.width, keys=2):
        console.print(table)


def _attention_cost(args: argparse.Namespace) -> None:
    from llmassay.backends import llama_internals
    from llmassay.efficiency.attention_cost import (analyse, load_average, markdown, measure, open_targets,
                                                    parse_lengths, write_record)
    from llmassay.efficiency.host import host_facts
    from llmassay.efficiency.plots import attention_curves

    lengths = parse_lengths(args.lengths)
    for flag, value, least in (("--repeats", args.repeats, 2), ("--threads", args.threads, 1),
                               ("--n-batch", args.n_batch, 1)):
        if value < least:  # the CIs resample repeats: one repeat has none to resample
            raise LlmassayError(f"attention-cost: {flag} must be at least {least}, not {value}")
    out = Path(args.output_path)
    out.mkdir(parents=True, exist_ok=True)
    targets = open_targets(args.model, lengths, args.threads, args.n_batch, args.flash_attn, args.swa_full)
    load_before = load_average()
    err = _stderr_console()
    prefills = measure(targets, lengths, args.repeats, args.seed,
                       progress=lambda p: err.print(f"attention-cost: {p.label} n={p.n} repeat {p.repeat + 1}: "
                                                    f"{p.wall_s:.2f} s wall, {p.cpu_s:.2f} s CPU, KV state {p.kv_state_bytes} B",
                                                    markup=False, soft_wrap=True))
    results = [analyse(t, prefills, args.seed) for t in targets]
    ctx = targets[0].context
    plan = {"models": args.model, "lengths": list(lengths), "repeats": args.repeats, "threads": args.threads,
            "n_batch": ctx["n_batch"], "n_ubatch": ctx["n_ubatch"],
            "flash_attn": "on" if args.flash_attn else "off", "swa_full": args.swa_full, "seed": args.seed,
            "order": "lengths ascending on even repeats, descending on odd; configurations alternate likewise"}
    extra = {"llama_cpp_python": llama_internals.installed_version(), "llama_cpp_defaults": llama_internals.context_defaults(),
             "host": host_facts(), "load_average": {"before": load_before, "after": load_average()},
             "timing": "wall clock and process CPU time around the llama_decode calls of one prefill into an emptied KV "
                       "cache (random tokens, logits for the last position only)"}
    write_record(out / "attention_cost.json", plan, results, extra)
    table = markdown(results, plan)
    (out / "attention_cost.md").write_text(table + "\n", encoding="utf-8")
    (out / "attention_cost.svg").write_text(attention_curves(results), encoding="utf-8")
    for t in targets:
        t.llm.close()
    _stdout().print(table, markup=False, soft_wrap=True)
    _stdout().print(f"attention-cost: {out / 'attention_cost.json'}, {out / 'attention_cost.svg'}", markup=False,
                    soft_wrap=True)


def _stderr_console() -> Any:
    from rich.console import Console

    return Console(stderr=True)
