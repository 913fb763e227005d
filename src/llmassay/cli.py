"""`llmassay` command line: parses arguments and calls the library; no logic lives here."""

from __future__ import annotations

import argparse
import sys

from rich.console import Console
from rich.table import Table

from llmassay.backends.base import parse_model_args
from llmassay.cli_audit import add_audit_commands, run_audit_command
from llmassay.evaluate import RunConfig, evaluate
from llmassay.perturbations import DEFAULT_PERTURBATIONS, PERTURBATIONS
from llmassay.report import compare_runs, comparison_tables, write_compare, write_report
from llmassay.report.table import details_tables, metrics_table
from llmassay.tasks.loader import bundled_tasks, load_task
from llmassay.types import LlmassayError


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="llmassay", description="Measure and mitigate LLM failure modes.")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="evaluate a model on tasks with probes")
    run.add_argument("--model", required=True, help="KIND/NAME: llamacpp/smollm2-135m, hf/DIR, openai/MODEL")
    run.add_argument("--model-args", default="", help="k=v,k2=v2 passed to the backend")
    run.add_argument("--tasks", required=True, help="comma-separated task names or files")
    run.add_argument("--probe", default="accuracy", help="comma-separated probes (default: accuracy)")
    run.add_argument("--metrics", default=None, help="override the tasks' metrics, e.g. acc,acc_norm (no generation)")
    run.add_argument("--limit", type=int, default=None, help="first N samples of each task")
    run.add_argument("--num-fewshot", type=int, default=None)
    run.add_argument("--seed", type=int, default=0)
    run.add_argument("--temperature", type=float, default=0.0)
    run.add_argument("--batch-size", type=int, default=64, help="requests per backend call")
    run.add_argument("--perturbations", default=None, help="brittleness: names or families (see `llmassay perturbations`)")
    run.add_argument("--scoring", default=None, help="brittleness: acc (default), acc_norm or acc_gen")
    run.add_argument("--repeats", type=int, default=None, help="brittleness: repeat canonical generation K times")
    run.add_argument("--modes", default=None, help="structured: strict,extract,repair,retry,constrained (default all)")
    run.add_argument("--max-retries", type=int, default=None, help="structured: retry mode's retries (default 2)")
    run.add_argument("--instructions", type=int, default=None, help="structured: other JSON instruction wordings, 0-5 (default 5)")
    run.add_argument("--prompt-format", default=None, help="structured: chat (default; chat template) or raw (base models)")
    run.add_argument("--chunk-size", type=int, default=32, help="samples per resume checkpoint")
    run.add_argument("--executor", default="local", choices=["local", "ray"], help="where requests run (same results)")
    run.add_argument("--workers", type=int, default=None, help="--executor ray: backend actors (default 2)")
    run.add_argument("--output-path", default="runs/latest")
    run.add_argument("--no-cache", action="store_true", help="bypass the request cache")
    run.add_argument("--cache-path", default=None, help="SQLite cache file (default ~/.cache/llmassay/cache.sqlite)")

    run.add_argument("--report", action="store_true", help="also write OUTPUT_PATH/report.html")

    report = sub.add_parser("report", help="write a self-contained HTML report of a run")
    report.add_argument("run_dir", help="a run's --output-path (or one results_*.json file)")
    report.add_argument("--output", default=None, help="HTML file to write (default RUN_DIR/report.html)")
    compare = sub.add_parser("compare", help="metric deltas between two runs, paired on common samples")
    compare.add_argument("run_a", help="run A (directory or results_*.json)")
    compare.add_argument("run_b", help="run B; deltas are B - A")
    compare.add_argument("--html", default=None, help="also write the comparison as a self-contained HTML file")
    compare.add_argument("--json", default=None, help="also write the comparison as JSON")
    compare.add_argument("--force", action="store_true", help="compare even when a task's items differ (content hash)")
    compare.add_argument("--seed", type=int, default=0, help="bootstrap seed")

    sub.add_parser("tasks", help="list bundled tasks")
    sub.add_parser("perturbations", help="list prompt perturbations for --probe brittleness")
    add_audit_commands(sub)
    return parser


def _run(args: argparse.Namespace, console: Console) -> None:
    cfg = RunConfig(
        model=args.model,
        tasks=[t for t in args.tasks.split(",") if t],
        probes=[p for p in args.probe.split(",") if p],
        model_args=parse_model_args(args.model_args),
        output_path=args.output_path,
        limit=args.limit,
        seed=args.seed,
        num_fewshot=args.num_fewshot,
        temperature=args.temperature,
        use_cache=not args.no_cache,
        cache_path=args.cache_path,
        batch_size=args.batch_size,
        chunk_size=args.chunk_size,
        executor=args.executor,
        workers=args.workers,
        metrics=[m for m in args.metrics.split(",") if m] if args.metrics else None,
        probe_options={
            "perturbations": args.perturbations,
            "scoring": args.scoring,
            "repeats": args.repeats,
            "modes": args.modes,
            "max_retries": args.max_retries,
            "instructions": args.instructions,
            "prompt_format": args.prompt_format,
        },
    )
    outcome = evaluate(cfg)
    out = _stdout()
    out.print(metrics_table(outcome.results, title=f"{cfg.model}"))
    for table in details_tables(outcome.results):
        out.print(table)
    engine = outcome.results["engine"]
    evaluated = engine.get("tokens_evaluated_by_backend")
    out.print(
        f"wall {outcome.results['wall_time_s']:.1f} s · requests {engine['requests']:,} "
        f"(unique {engine['unique']:,}, cached {engine['cache_hits']:,}) · tokens requested {engine['tokens']:,}"
        + (f", evaluated after prefix reuse {evaluated:,}" if evaluated is not None else "")
        + f" · results: {outcome.results_path}",
        soft_wrap=True,
    )
    if args.report:
        out.print(f"report: {write_report(outcome.results_path)}", markup=False, soft_wrap=True)


def _compare(args: argparse.Namespace) -> None:
    comparison = compare_runs(args.run_a, args.run_b, force=args.force, seed=args.seed)
    out = _stdout()
    for table in comparison_tables(comparison):
        out.print(table)
    for line in [*comparison.warnings, *(f"only in A: {m}" for m in comparison.only_a),
                 *(f"only in B: {m}" for m in comparison.only_b),
                 *(f"written: {p}" for p in write_compare(comparison, args.html, args.json))]:
        out.print(line, markup=False, highlight=False, soft_wrap=True)


def _tasks(console: Console) -> None:
    table = Table(title="bundled tasks")
    for column in ("task", "type", "samples", "metrics", "file"):
        table.add_column(column)
    for name, path in bundled_tasks().items():
        task = load_task(name)
        table.add_row(name, task.output_type, str(len(task.samples)), ", ".join(task.metrics), str(path))
    _stdout().print(table)


def _perturbations() -> None:
    table = Table(title="perturbations (* = default set)")
    for column in ("name", "family", "what it does"):
        table.add_column(column)
    for p in PERTURBATIONS.values():
        table.add_row(p.name + (" *" if p.name in DEFAULT_PERTURBATIONS else ""), p.family, p.description)
    _stdout().print(table)


def _stdout() -> Console:
    """Tables keep their width when piped to a file (rich would wrap them at 80 columns)."""
    probe = Console()
    return probe if probe.is_terminal else Console(width=200)


# What Ctrl-C leaves behind: `run` keeps every finished sample and resumes; an audit
# writes its files only at the end.
INTERRUPTED = {
    "run": "interrupted: finished samples are saved; rerun the same command to resume",
    "audit": "interrupted: the audit writes its files at the end, so nothing was written; rerun to start again",
    "rescore": "interrupted: nothing was written; rerun to start again",
}


def main(argv: list[str] | None = None) -> int:
    args = _build_parser().parse_args(argv)
    console = Console(stderr=True)
    try:
        if args.command == "run":
            _run(args, console)
        elif args.command == "report":
            _stdout().print(f"report: {write_report(args.run_dir, args.output)}", markup=False, soft_wrap=True)
        elif args.command == "compare":
            _compare(args)
        elif args.command == "tasks":
            _tasks(console)
        elif args.command == "perturbations":
            _perturbations()
        else:
            run_audit_command(args)
    except LlmassayError as exc:
        console.print(f"error: {exc}", markup=False, highlight=False, soft_wrap=True)
        return 2
    except KeyboardInterrupt:
        console.print(INTERRUPTED.get(args.command, "interrupted"), markup=False)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
