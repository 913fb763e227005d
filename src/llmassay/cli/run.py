"""`llmassay run`, `assess`, `report`, `compare`, `probes`, `tasks`, `perturbations`: the evaluation commands."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from llmassay.backends.base import parse_model_args
from llmassay.cli.exits import RegressionFound
from llmassay.cli.lmeval import add_lmeval_flags, task_names, task_options, write_lmeval_results
from llmassay.cli.lmeval_args import DEFAULT_BATCH_SIZE, add_lmeval_only_flags, batch_size_value, limit_value, translate
from llmassay.terminal import stdout_console as _stdout
from llmassay.types import LlmassayError

if TYPE_CHECKING:
    from llmassay.evaluation import RunResults

# The commands' heavy modules (the engine, probes, the report and its plotting) are
# imported inside the functions that use them: `llmassay --help` and `llmassay probes`
# stay fast and import neither torch, ray nor matplotlib.

RUN_COMMANDS = ("run", "assess", "report", "compare", "probes", "tasks", "perturbations")


def add_run_commands(sub: argparse._SubParsersAction) -> None:
    run = sub.add_parser("run", help="evaluate a model on tasks with probes")
    run.add_argument("--model", "-m", required=True, action="append",
                     help="KIND/NAME: llamacpp/smollm2-135m, hf/DIR, openai/MODEL; or lm-eval's model types: "
                          "hf (--model_args pretrained=DIR), local-completions, openai-completions, "
                          "local-chat-completions, openai-chat-completions (model=M,base_url=U), gguf (base_url=U); "
                          "repeatable: each model runs into OUTPUT_PATH/<model>/ and OUTPUT_PATH/matrix.html "
                          "compares them")
    run.add_argument("--model-args", "--model_args", "-a", default="", metavar="K=V,…",
                     help="k=v,k2=v2 (or a JSON object) passed to the backend")
    run.add_argument("--tasks", "-t", required=True, help="comma-separated task names or files")
    run.add_argument("--probe", default="accuracy", help="comma-separated probes (default: accuracy)")
    run.add_argument("--metrics", default=None, help="override the tasks' metrics, e.g. acc,acc_norm (no generation)")
    run.add_argument("--limit", "-L", type=limit_value, default=None, metavar="N|0<F<1",
                     help="first N samples of each task, or below 1 that share of each task (0.1: the first 10%%, "
                          "rounded up, as lm-eval)")
    run.add_argument("--num-fewshot", "--num_fewshot", "-f", type=int, default=None, metavar="N")
    run.add_argument("--mc-format", default=None, choices=["cloze", "lettered"],
                     help="plain .jsonl/.csv multiple choice: cloze (default: choices scored as text, not shown) "
                          "or lettered (options listed A., B., …; letters scored, as MMLU)")
    run.add_argument("--seed", type=int, default=0)
    run.add_argument("--temperature", type=float, default=None, help="sampling temperature (default 0: greedy)")
    run.add_argument("--batch-size", "--batch_size", "-b", type=batch_size_value, default=DEFAULT_BATCH_SIZE,
                     metavar="N|auto", help=f"requests per backend call (default and auto: {DEFAULT_BATCH_SIZE})")
    run.add_argument("-P", dest="probe_option", action="append", default=[], metavar="PROBE.KEY=VALUE",
                     help="a probe's option, e.g. -P brittleness.repeats=5 (see `llmassay probes`); repeatable")
    for flag, target in SHORTCUTS.items():
        run.add_argument(flag, default=None, help=f"shortcut for -P {target}=…")
    run.add_argument("--chunk-size", type=int, default=32, help="samples per resume checkpoint")
    run.add_argument("--executor", default="local", choices=["local", "ray"], help="where requests run (same results)")
    run.add_argument("--workers", type=int, default=None, help="--executor ray: backend actors (default 2)")
    run.add_argument("--output-path", "--output_path", "-o", default="runs/latest", metavar="DIR",
                     help="results folder, one per run (default runs/latest)")
    run.add_argument("--no-cache", action="store_true", help="bypass the request cache")
    run.add_argument("--cache-path", "--use_cache", default=None, metavar="FILE",
                     help="SQLite cache file (default ~/.cache/llmassay/cache.sqlite)")

    run.add_argument("--report", action="store_true", help="also write OUTPUT_PATH/report.html")
    add_lmeval_flags(run)
    add_lmeval_only_flags(run)

    report = sub.add_parser("report", help="write a self-contained HTML report of a run")
    report.add_argument("run_dir", help="a run's --output-path, one results_*.json file, or the --output-path of "
                        "`llmassay judge`, `tune sft|dpo` or `tune cost`")
    report.add_argument("--output", default=None, metavar="FILE", help="HTML file to write (default RUN_DIR/report.html)")
    compare = sub.add_parser("compare", help="metric deltas between two runs, paired on common samples")
    compare.add_argument("run_a", help="run A (directory or results_*.json)")
    compare.add_argument("run_b", help="run B; deltas are B - A")
    compare.add_argument("--html", default=None, help="also write the comparison as a self-contained HTML file")
    compare.add_argument("--json", default=None, help="also write the comparison as JSON")
    compare.add_argument("--force", action="store_true", help="compare even when a task's items differ (content hash)")
    compare.add_argument("--seed", type=int, default=0, help="bootstrap seed")
    compare.add_argument("--fail-on-regression", action="append", default=[], metavar="METRIC[:DELTA]",
                         help="exit 3 when B is worse than A on METRIC (task/probe/metric, probe/metric or metric; "
                              "globs allowed, e.g. accuracy/acc*) by more than DELTA (default 0) with the paired "
                              "95%% CI excluding 0; lower-is-better metrics (perplexity, flip_rate, …) count a rise; "
                              "METRIC:DELTA:lower or :higher says the direction; repeatable")

    assess = sub.add_parser("assess", help="run every probe's preset and write one report with a summary card")
    assess.add_argument("--model", required=True, action="append",
                        help="KIND/NAME, as for `run`; repeatable: each model runs into OUTPUT_PATH/<model>/, then "
                             "OUTPUT_PATH/matrix.json and matrix.html set the models side by side")
    assess.add_argument("--model-args", default="", help="k=v,k2=v2 passed to the backend")
    assess.add_argument("--output-path", "--output_path", "-o", required=True, metavar="DIR",
                        help="directory for results, samples and report.html")
    size = assess.add_mutually_exclusive_group()
    size.add_argument("--quick", dest="preset", action="store_const", const="quick", help="small presets (default)")
    size.add_argument("--full", dest="preset", action="store_const", const="full", help="full presets")
    assess.set_defaults(preset="quick")
    assess.add_argument("--probe", default=None, help="only these probes (default: every probe with a preset)")
    assess.add_argument("-P", dest="probe_option", action="append", default=[], metavar="PROBE.KEY=VALUE",
                        help="override a preset's option, e.g. -P brittleness.perturbations=case")
    assess.add_argument("--seed", type=int, default=0)
    assess.add_argument("--batch-size", type=int, default=64, help="requests per backend call")
    assess.add_argument("--executor", default="local", choices=["local", "ray"], help="where requests run (same results)")
    assess.add_argument("--workers", type=int, default=None, help="--executor ray: backend actors (default 2)")
    assess.add_argument("--no-cache", action="store_true", help="bypass the request cache")
    assess.add_argument("--cache-path", default=None, help="SQLite cache file (default ~/.cache/llmassay/cache.sqlite)")

    sub.add_parser("probes", help="list probes with their options, defaults and supported task types")
    sub.add_parser("tasks", help="list bundled tasks")
    sub.add_parser("perturbations", help="list prompt perturbations for --probe brittleness")

# Flags from before `-P`, kept as documented shortcuts of the probe options they set.
SHORTCUTS = {
    "--perturbations": "brittleness.perturbations",
    "--scoring": "brittleness.scoring",
    "--repeats": "brittleness.repeats",
    "--modes": "structured.modes",
    "--max-retries": "structured.max_retries",
    "--instructions": "structured.instructions",
    "--prompt-format": "structured.prompt_format",
}


def probe_options(args: argparse.Namespace) -> dict[str, str]:
    """`-P probe.key=value` pairs and the shortcut flags → {"probe.key": "value"}."""
    given: dict[str, str] = {}
    for flag, target in SHORTCUTS.items():
        value = getattr(args, flag.lstrip("-").replace("-", "_"))
        if value is not None:
            given[target] = value
    for item in args.probe_option:
        key, sep, value = item.partition("=")
        probe, dot, name = key.strip().partition(".")
        if not sep or not dot or not probe or not name:
            raise LlmassayError(f"-P {item}: expected PROBE.KEY=VALUE, e.g. -P brittleness.repeats=5")
        given[f"{probe}.{name}"] = value
    return given


def _check_shortcuts(args: argparse.Namespace, probes: list[str]) -> None:
    """A shortcut flag of a probe the run does not include would do nothing: say so."""
    for flag, target in SHORTCUTS.items():
        owner = target.split(".")[0]
        if getattr(args, flag.lstrip("-").replace("-", "_")) is not None and owner not in probes:
            raise LlmassayError(f"{flag} is an option of --probe {owner}, which this run does not include "
                                f"(--probe {','.join(probes)}); add --probe {','.join([*probes, owner])}")


def model_folders(models: list[str], output_path: str) -> dict[str, str]:
    """Each model's run folder under --output-path when several models are given (one
    folder per model, named after it); one model keeps --output-path itself."""
    from llmassay.runfiles import safe_name

    if len(models) == 1:
        return {models[0]: output_path}
    if len(set(models)) < len(models):
        twice = next(m for m in models if models.count(m) > 1)
        raise LlmassayError(f"--model {twice} is given twice")
    folders = {m: str(Path(output_path) / safe_name(m.replace("/", "_"))) for m in models}
    if len(set(folders.values())) < len(folders):
        raise LlmassayError(f"--model: {', '.join(models)} would share a run folder under {output_path}; "
                            "give models whose names differ in letters or digits")
    return folders


def _each_model(args: argparse.Namespace, one: Any) -> list[str]:
    """Run `one(args)` per --model, each with its own --output-path; the run folders."""
    folders = model_folders(args.model, args.output_path)
    for model, folder in folders.items():
        one(argparse.Namespace(**{**vars(args), "model": model, "output_path": folder}))
    return list(folders.values())


def _write_matrix(args: argparse.Namespace, folders: list[str]) -> None:
    """Several models: the models × metrics matrix, at the terminal and as matrix.json/html."""
    from llmassay.report.matrix import build_matrix, matrix_tables, write_matrix

    out = _stdout()
    matrix = build_matrix(folders, seed=args.seed)
    for table in matrix_tables(matrix, width=out.width):
        out.print(table)
    for line in [*matrix.notes, *(f"{r.task} · {r.probe} · {r.metric}: {r.separation}" for r in matrix.rows),
                 *(f"matrix: {p}" for p in write_matrix(matrix, args.output_path))]:
        out.print(line, markup=False, highlight=False, soft_wrap=True)


def _run(args: argparse.Namespace, console: Console) -> None:
    if len(args.model) > 1:
        _write_matrix(args, _each_model(args, lambda one: _run_one(one, console)))
    else:
        _run_one(argparse.Namespace(**{**vars(args), "model": args.model[0]}), console)


def _run_one(args: argparse.Namespace, console: Console) -> None:
    from llmassay.evaluation import RunConfig, evaluate

    probes = [p for p in args.probe.split(",") if p]
    _check_shortcuts(args, probes)
    if args.output_path.lower().endswith(".json"):
        raise LlmassayError(f"--output-path {args.output_path}: names a folder for the run's files (lm-eval's "
                            "DIR/NAME.json form is not taken); give the folder")
    lm = translate(args, probes)

    cfg = RunConfig(
        model=lm.model,
        tasks=task_names(args),
        probes=probes,
        model_args=lm.model_args,
        output_path=args.output_path,
        limit=args.limit,
        seed=args.seed,
        num_fewshot=args.num_fewshot,
        temperature=lm.temperature,
        generation_kwargs=lm.generation_kwargs,
        use_cache=not args.no_cache,
        cache_path=args.cache_path,
        batch_size=args.batch_size,
        chunk_size=args.chunk_size,
        executor=args.executor,
        workers=args.workers,
        metrics=[m for m in args.metrics.split(",") if m] if args.metrics else None,
        mc_format=args.mc_format,
        probe_options={**lm.probe_options, **probe_options(args)},  # a -P given wins
        task_options=task_options(args),
    )
    logging.getLogger("llmassay.cli").debug("run config: %s", cfg)  # -v
    outcome = evaluate(cfg)
    write_lmeval_results(args, cfg, outcome)
    _print_outcome(outcome, args.report)


def _assess(args: argparse.Namespace) -> None:
    if len(args.model) > 1:
        _write_matrix(args, _each_model(args, _assess_one))
    else:
        _assess_one(argparse.Namespace(**{**vars(args), "model": args.model[0]}))


def _assess_one(args: argparse.Namespace) -> None:
    from llmassay.assess import assess_config
    from llmassay.evaluation import evaluate
    from llmassay.report import write_report

    given = {"probe_option": args.probe_option, **{flag.lstrip("-").replace("-", "_"): None for flag in SHORTCUTS}}
    cfg = assess_config(
        args.model, args.output_path, args.preset,
        probes=[p for p in args.probe.split(",") if p] if args.probe else None,
        overrides=probe_options(argparse.Namespace(**given)),
        model_args=parse_model_args(args.model_args), seed=args.seed, batch_size=args.batch_size,
        use_cache=not args.no_cache, cache_path=args.cache_path, executor=args.executor, workers=args.workers,
    )
    outcome = evaluate(cfg)
    _print_outcome(outcome, report=False)
    out = _stdout()
    out.print(summary_table(outcome.results))
    if args.preset == "quick":
        out.print(f"quick presets (n per line above); the full ones: llmassay assess --model {args.model} --full "
                  f"--output-path DIR", markup=False, highlight=False, soft_wrap=True)
    out.print(f"report: {write_report(outcome.results_path)}", markup=False, soft_wrap=True)


def summary_table(results: dict[str, Any]) -> Table:
    """The report's summary card, as a terminal table."""
    from llmassay.report.table import summary_rows

    table = Table(title="summary", title_justify="left")
    rows = summary_rows(results)
    for column in ("challenge", "task", "headline", "verdict"):
        if column == "headline":  # figures never fold mid-number (terminal.py)
            table.add_column(column, no_wrap=True, min_width=max([len(r[2]) for r in rows] + [8]))
        else:
            table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*(Text(cell) for cell in row))  # "schema_valid[strict]" is not markup
    return table


def _print_outcome(outcome: RunResults, report: bool) -> None:
    from llmassay.report import write_report
    from llmassay.report.table import details_tables, metrics_table, token_line

    out = _stdout()
    cfg_model = outcome.results["model"]["spec"]
    for table in [*metrics_table(outcome.results, title=cfg_model, width=out.width),
                  *details_tables(outcome.results, width=out.width)]:
        out.print(table)
    engine = outcome.results["engine"]
    out.print(
        f"wall {outcome.results['wall_time_s']:.1f} s · requests {engine['requests']:,} "
        f"(unique {engine['unique']:,}, cached {engine['cache_hits']:,}) · tokens: {token_line(engine)}"
        f" · results: {outcome.results_path}",
        soft_wrap=True, markup=False, highlight=False,
    )
    if report:
        out.print(f"report: {write_report(outcome.results_path)}", markup=False, soft_wrap=True)


def _compare(args: argparse.Namespace) -> None:
    from llmassay.report import compare_runs, comparison_tables, write_compare
    from llmassay.report.regression import RegressionRule, check_regressions

    rules = [RegressionRule.parse(text) for text in args.fail_on_regression]  # a typo fails before any work
    comparison = compare_runs(args.run_a, args.run_b, force=args.force, seed=args.seed)
    out = _stdout()
    for table in comparison_tables(comparison, width=out.width):
        out.print(table)
    from llmassay.cli.judge import review_tables  # judge–human agreement, when labels exist

    for table in review_tables(comparison.review):
        out.print(table)
    for line in [*comparison.warnings, *comparison.notes, *filter(None, (d.power_note() for d in comparison.paired)),
                 *(f"only in A: {m}" for m in comparison.only_a),
                 *(f"only in B: {m}" for m in comparison.only_b),
                 *(f"written: {p}" for p in write_compare(comparison, args.html, args.json))]:
        out.print(line, markup=False, highlight=False, soft_wrap=True)
    if rules:
        checks, notes = check_regressions(comparison, rules)
        for line in [*(c.line() for c in checks), *notes]:
            out.print(line, markup=False, highlight=False, soft_wrap=True)
        failed = [c for c in checks if c.regressed]
        if failed:
            names = ", ".join(f"{c.delta.task} / {c.delta.probe} / {c.delta.metric}" for c in failed)
            raise RegressionFound(f"regression: {len(failed)} of {len(checks)} checked metrics worse in B ({names})")


def _probes() -> None:
    from llmassay.probes._options import describe
    from llmassay.probes._registry import probe_class, probe_targets

    out = _stdout()
    for name in probe_targets():
        cls = probe_class(name)
        presets = ", ".join(f"{k}: {', '.join(p.tasks)} ×{p.limit or 'all'}" for k, p in cls.presets.items()) or "none"
        out.print(f"[bold]{name}[/bold] — {cls.description}", soft_wrap=True, highlight=False)
        out.print(f"  tasks: {', '.join(cls.task_types)} · presets: {presets}", markup=False, soft_wrap=True,
                  highlight=False)
        table = Table(show_header=True, box=None, padding=(0, 2))
        for column in ("  option", "type", "default", "help"):
            table.add_column(column, overflow="fold")
        for opt in describe(cls.Options):
            default = ",".join(map(str, opt.default)) if isinstance(opt.default, tuple) else str(opt.default)
            table.add_row(f"  -P {name}.{opt.name}", opt.type, default, opt.help)
        if describe(cls.Options):
            out.print(table)
        out.print()


def _tasks(console: Console) -> None:
    from llmassay.tasks.loader import bundled_tasks, load_task

    table = Table(title="bundled tasks")
    for column in ("task", "type", "samples", "metrics", "file"):
        table.add_column(column, overflow="fold")  # a path or description wraps, never "…"
    for name, path in bundled_tasks().items():
        task = load_task(name)
        table.add_row(name, task.output_type, str(len(task.samples)), ", ".join(task.metrics), str(path))
    _stdout().print(table)


def _perturbations() -> None:
    from llmassay.perturbations import DEFAULT_PERTURBATIONS, PERTURBATIONS

    table = Table(title="perturbations (* = default set)")
    for column in ("name", "family", "what it does"):
        table.add_column(column, overflow="fold")
    for p in PERTURBATIONS.values():
        table.add_row(p.name + (" *" if p.name in DEFAULT_PERTURBATIONS else ""), p.family, p.description)
    _stdout().print(table)


def run_run_command(args: argparse.Namespace) -> None:
    """Dispatch one of RUN_COMMANDS."""
    if args.command == "run":
        _run(args, Console(stderr=True))
    elif args.command == "assess":
        _assess(args)
    elif args.command == "probes":
        _probes()
    elif args.command == "report":
        from llmassay.report import write_report

        _stdout().print(f"report: {write_report(args.run_dir, args.output)}", markup=False, soft_wrap=True)
    elif args.command == "compare":
        _compare(args)
    elif args.command == "tasks":
        _tasks(Console(stderr=True))
    elif args.command == "perturbations":
        _perturbations()
