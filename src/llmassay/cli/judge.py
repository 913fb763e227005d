"""`llmassay judge` and `llmassay review`: argument wiring and output formatting only; the
work is in `llmassay.judge` and `llmassay.review` (imported lazily)."""

from __future__ import annotations

import argparse
from typing import Any

from rich.table import Table

from llmassay.terminal import stdout_console as _stdout

JUDGE_COMMANDS = ("judge", "review")


def add_judge_commands(sub: Any) -> None:
    judge = sub.add_parser("judge", help="pairwise LLM-as-judge of two runs, both orders, with its biases measured")
    judge.add_argument("run_a", help="run A (an --output-path of `llmassay run`)")
    judge.add_argument("run_b", help="run B, judged against A on common sample ids")
    judge.add_argument("--judge-model", required=True, help="KIND/NAME as for `run`, or 'oracle' (exact-answer rule)")
    judge.add_argument("--model-args", default="", help="k=v,k2=v2 passed to the judge's backend")
    judge.add_argument("--output-path", required=True, metavar="DIR",
                       help="directory for judge_results.json and per-item files")
    judge.add_argument("--rubric", default=None, help="also grade each answer alone by this rubric (text file)")
    judge.add_argument("--scale", default="1-10", choices=("1-10", "pass-fail"), help="rubric grades (default 1-10)")
    judge.add_argument("--template", default=None, help="pairwise judge template (Jinja: question, answer_a, answer_b)")
    judge.add_argument("--grade-template", default=None, help="rubric judge template (Jinja: question, answer, …)")
    judge.add_argument("--calibrate", default="arith_sample",
                       help="task with exact answers for planted-truth calibration, or 'none' (default arith_sample)")
    judge.add_argument("--calibration-limit", type=int, default=30,
                       help="calibration items (default 30; fewer than 10 never make a judge informative)")
    judge.add_argument("--limit", type=int, default=None, help="judge the first N common items")
    judge.add_argument("--repeats", type=int, default=1, help="ask the first order again at T>0 this often (default 1)")
    judge.add_argument("--repeat-temperature", type=float, default=0.7)
    judge.add_argument("--with-reference", action="store_true", help="show the judge the reference answer")
    judge.add_argument("--max-tokens", type=int, default=192, help="judge output tokens (default 192)")
    judge.add_argument("--verdict", default="generate", choices=("generate", "loglik"),
                       help="generate: parse [[A]]/[[B]]/[[C]] from the judge's text; loglik: its most likely of "
                            "A/B after the prompt (never unparseable; for small judges)")
    judge.add_argument("--ties", action="store_true", help="--verdict loglik: allow C (tie) as a third choice")
    judge.add_argument("--chat-template", default="auto", choices=("auto", "on", "off"),
                       help="judge prompts through the judge's chat template: auto (chat models), on, off")
    judge.add_argument("--seed", type=int, default=0)
    judge.add_argument("--batch-size", type=int, default=8, help="judge requests per backend call (and cache write)")
    judge.add_argument("--no-cache", action="store_true", help="bypass the request cache")
    judge.add_argument("--cache-path", default=None, help="SQLite cache file (default ~/.cache/llmassay/cache.sqlite)")


    review = sub.add_parser("review", help="label a run's answers (or a judgement's pairs) in a local web app")
    review.add_argument("run_dir", help="a run's --output-path, or `llmassay judge`'s (pairwise items)")
    review.add_argument("--port", type=int, default=8400, help="port on 127.0.0.1 (default 8400)")
    review.add_argument("--reviewer", default="reviewer", help="your name: labels are kept per reviewer")
    review.add_argument("--blind", action="store_true", help="hide the judge's verdict and shuffle A/B per item")
    review.add_argument("--export", default=None, metavar="JSONL", help="write the labels as JSONL and exit")


def run_judge_command(args: argparse.Namespace) -> None:
    if args.command == "judge":
        _judge(args)
    else:
        _review(args)


def _review(args: argparse.Namespace) -> None:
    from pathlib import Path

    from llmassay.types import LlmassayError

    if args.export:
        from llmassay.review.store import DB_NAME, LabelStore

        if not (Path(args.run_dir) / DB_NAME).exists():
            raise LlmassayError(f"{args.run_dir}: no {DB_NAME} (no labels yet)")
        store = LabelStore(args.run_dir)
        Path(args.export).write_text(store.export_jsonl(), encoding="utf-8")
        _stdout().print(f"written: {args.export}", markup=False, soft_wrap=True)
        return
    if not 0 < args.port < 65536:
        raise LlmassayError(f"--port {args.port}: not a port number (1-65535)")
    from llmassay.review.app import serve

    serve(args.run_dir, args.port, args.reviewer, args.blind,
          announce=lambda line: _stdout().print(line, markup=False, soft_wrap=True))


def _judge(args: argparse.Namespace) -> None:
    from llmassay.backends.base import parse_model_args
    from llmassay.judge.progress import judge_meter
    from llmassay.judge.session import JudgeConfig, run_judgement

    cfg = JudgeConfig(
        run_a=args.run_a, run_b=args.run_b, judge_model=args.judge_model, output_path=args.output_path,
        model_args=parse_model_args(args.model_args), template=args.template, grade_template=args.grade_template,
        rubric=args.rubric, scale=args.scale, calibrate=None if args.calibrate == "none" else args.calibrate,
        calibration_limit=args.calibration_limit, limit=args.limit, repeats=args.repeats,
        repeat_temperature=args.repeat_temperature, with_reference=args.with_reference, max_tokens=args.max_tokens,
        seed=args.seed, use_cache=not args.no_cache, cache_path=args.cache_path, batch_size=args.batch_size,
        verdict=args.verdict, ties=args.ties, chat_template=args.chat_template,
    )
    with judge_meter() as meter:
        result = run_judgement(cfg, meter=meter)
    out = _stdout()
    for table in judge_tables(result):
        out.print(table)
    if result.get("warning"):
        out.print(f"warning: {result['warning']}", markup=False, highlight=False)
    out.print(f"written: {cfg.output_path}/judge_results.json", markup=False, soft_wrap=True)


def judge_tables(result: dict[str, Any]) -> list[Table]:
    """Calibration, pairwise and rubric figures; every figure of an uncalibrated or
    uninformative judge carries the warning on its own line."""
    note = result.get("warning") or ""
    tables = []
    sections = [("calibration (planted truth)", (result.get("calibration") or {}).get("metrics", {}), "")]
    mode = " (verdicts by log-likelihood)" if (result.get("judge") or {}).get("verdict") == "loglik" else ""
    sections.append((f"pairwise{mode}: A = {result['runs']['a']}, B = {result['runs']['b']}", result.get("metrics", {}),
                     note))
    for side in ("a", "b"):
        if "grading" in result:
            sections.append((f"rubric grade of {side.upper()} ({result['grading']['scale']})", result["grading"][side], note))
    for title, metrics, flag in sections:
        if not metrics:
            continue
        table = Table(title=title, title_justify="left")
        for column in ("metric", "value", "95% CI", "n", "note"):
            table.add_column(column)
        for name, m in metrics.items():
            table.add_row(name, f"{m['value']:.3f}", f"[{m['ci_low']:.3f}, {m['ci_high']:.3f}]", str(m["n"]), flag)
        tables.append(table)
    return tables


def review_tables(sections: list[Any]) -> list[Table]:
    """Judge–human (and human–human) agreement for `llmassay compare`, from the review
    sections `compare_runs` found next to either run."""
    tables = []
    for section in sections:
        for block in section.tables:
            table = Table(title=f"human review ({section.task}): {block.title}", title_justify="left")
            for column in block.columns:
                table.add_column(column)
            for row in block.rows:
                table.add_row(*row)
            table.caption = "; ".join(section.notes) or None
            tables.append(table)
    return tables
