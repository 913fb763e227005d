"""`llmassay run` flags for lm-eval task files, and lm-eval-shaped results files.

`--include-path DIR` registers a folder of lm-eval task YAMLs (names, tags, groups);
`--trust-task-code` lets their `!function` tags import the folder's Python;
`--data-dir DIR` holds local copies of their hub datasets; `--lm-eval-fewshot` draws
shots from lm-eval's seed-1234 stream; `--lm-eval-results` also writes
`<output>/<model>/results_<date>.json` as lm-eval does. The work is in `llmassay.tasks`.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from llmassay.types import LlmassayError

if TYPE_CHECKING:
    from llmassay.evaluation import RunConfig, RunResults


def add_lmeval_flags(run: argparse.ArgumentParser) -> None:
    group = run.add_argument_group("lm-eval task files")
    group.add_argument("--include-path", "--include_path", action="append", default=[], metavar="DIR",
                       help="a folder of lm-eval task YAMLs whose task, tag and group names --tasks may use; repeatable")
    group.add_argument("--trust-task-code", action="store_true",
                       help="let '!function' tags import Python from the task's folder (as trust_remote_code)")
    group.add_argument("--data-dir", default=None, metavar="DIR",
                       help="local hub datasets as DIR/<dataset_path>/<dataset_name>/<split>.jsonl "
                            "(default $LLMASSAY_DATA_DIR)")
    group.add_argument("--lm-eval-fewshot", action="store_true",
                       help="draw random few-shot examples from lm-eval's seed-1234 stream (its exact prompts)")
    group.add_argument("--lm-eval-results", action="store_true",
                       help="also write OUTPUT_PATH/<model>/results_<date>.json and samples as lm-eval does")


def task_names(args: argparse.Namespace) -> list[str]:
    """--tasks with the bundled tasks' tags (e.g. inverse_scaling) expanded to their tasks,
    and names, tags and groups from --include-path folders expanded to files."""
    from llmassay.tasks.loader import bundled_tags

    tags = bundled_tags()
    names = [m for t in args.tasks.split(",") if t for m in tags.get(t, [t])]
    if not args.include_path:
        return names
    from llmassay.tasks.registry import TaskIndex

    index = TaskIndex.scan(args.include_path)
    return [path for name in names for path in index.expand(name)]


def task_options(args: argparse.Namespace) -> dict[str, Any]:
    options: dict[str, Any] = {}
    if args.trust_task_code:
        options["trust_task_code"] = True
    if args.data_dir:
        options["data_dir"] = str(Path(args.data_dir).expanduser())
    if args.lm_eval_fewshot:
        options["lm_eval_fewshot"] = True
    return options


def report_groups(args: argparse.Namespace, outcome: RunResults) -> dict[str, dict[str, Any]]:
    """Groups named in --tasks with an `aggregate_metric_list`: their scores (lm-eval's
    rule, tasks/groups.py), printed and kept under `groups` in the results file."""
    if not args.include_path:
        return {}
    from rich.console import Console

    from llmassay.tasks.groups import group_results
    from llmassay.tasks.registry import TaskIndex

    groups = group_results(TaskIndex.scan(args.include_path), [t for t in args.tasks.split(",") if t], outcome.results)
    if not groups:
        return groups
    console = Console(stderr=True)
    for name, group in groups.items():
        values = ", ".join(f"{k} {m['value']:.4f} [{m['ci_low']:.4f}, {m['ci_high']:.4f}]"
                           for k, m in group["metrics"].items()) or "no task reports its metrics"
        console.print(f"group {name} ({len(group['tasks'])} tasks): {values}", highlight=False, soft_wrap=True)
    outcome.results["groups"] = groups
    try:
        outcome.results_path.write_text(json.dumps(outcome.results, indent=2, ensure_ascii=False, default=str) + "\n", encoding="utf-8")
    except OSError as exc:
        raise LlmassayError(f"{outcome.results_path}: cannot add the group scores ({exc.strerror})") from None
    return groups


def write_lmeval_results(args: argparse.Namespace, cfg: RunConfig, outcome: RunResults) -> Path | None:
    groups = report_groups(args, outcome)
    if not args.lm_eval_results:
        return None
    from llmassay.tasks import lmeval_results
    from llmassay.tasks.loader import load_task

    rows: dict[str, list[dict[str, Any]]] = {}
    for result in outcome.probe_results:
        if result.probe == "accuracy":
            rows[result.task] = result.samples
    tasks = {}
    for name in cfg.tasks:
        task = load_task(name, cfg.num_fewshot, cfg.seed, cfg.mc_format, **cfg.task_options)
        tasks[task.name] = task.with_metrics(cfg.metrics).with_generation(cfg.generation_kwargs)
    return lmeval_results.write(cfg.output_path, outcome.results, rows, tasks, groups)
