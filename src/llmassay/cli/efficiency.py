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

EFFICIENCY_COMMANDS = ("loadtest", "quantize-sweep", "pareto")


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
