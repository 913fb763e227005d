"""The `llmassay` parser and dispatcher: each command group's module adds its subcommands and runs them."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Callable
from typing import Any

from rich.console import Console

from llmassay import __version__
from llmassay.cli.audit import add_audit_commands, run_audit_command
from llmassay.cli.cache import add_cache_commands, run_cache_command
from llmassay.cli.edit import add_edit_commands, run_edit_command
from llmassay.cli.efficiency import EFFICIENCY_COMMANDS, add_efficiency_commands, run_efficiency_command
from llmassay.cli.facts import add_facts_commands, run_facts_command
from llmassay.cli.judge import JUDGE_COMMANDS, add_judge_commands, run_judge_command
from llmassay.cli.plan import PLAN_COMMANDS, add_plan_commands, run_plan_command
from llmassay.cli.run import RUN_COMMANDS, add_run_commands, run_run_command
from llmassay.cli.tokens import add_tokens_commands, run_tokens_command
from llmassay.cli.tune import add_tune_commands, run_tune_command
from llmassay.cli.watermark import add_watermark_commands, run_watermark_command
from llmassay.cli.exits import EXIT_CODES_HELP, RegressionFound, add_verbosity_flags, as_error, log_level
from llmassay.progress import show_notices, show_progress
from llmassay.types import LlmassayError


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="llmassay", description="Measure and mitigate LLM failure modes.",
                                     epilog=EXIT_CODES_HELP)
    parser.add_argument("--version", action="version", version=f"llmassay {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    add_run_commands(sub)
    add_audit_commands(sub)
    add_facts_commands(sub)
    add_watermark_commands(sub)
    add_tokens_commands(sub)
    add_judge_commands(sub)
    add_efficiency_commands(sub)
    add_plan_commands(sub)
    add_cache_commands(sub)
    add_edit_commands(sub)
    add_tune_commands(sub)
    add_verbosity_flags(parser)  # -v / -q before or after the command, on every subcommand
    return parser


# What Ctrl-C leaves behind: `run` keeps every finished sample and resumes; an audit
# writes its files only at the end.
INTERRUPTED = {
    # evaluate() counts what it kept (RunInterrupted); these are for a Ctrl-C outside it
    "run": "interrupted outside the evaluation (before the model loaded, or while printing): no finished sample "
           "was lost; rerun the same command to resume",
    "assess": "interrupted outside the evaluation (before the model loaded, or while writing the report): no "
              "finished sample was lost; rerun the same command to resume",
    "audit": "interrupted: the audit writes its files at the end, so nothing was written; rerun to start again",
    "rescore": "interrupted: nothing was written; rerun to start again",
    "judge": "interrupted: judge answers so far are in the request cache; rerun the same command to resume",
}


# Each command group's names and the function that runs them.
_DISPATCH: tuple[tuple[tuple[str, ...], Callable[[argparse.Namespace], Any]], ...] = (
    (RUN_COMMANDS, run_run_command),
    (JUDGE_COMMANDS, run_judge_command),
    (("tokens",), run_tokens_command),
    (("watermark",), run_watermark_command),
    (PLAN_COMMANDS, run_plan_command),
    (EFFICIENCY_COMMANDS, run_efficiency_command),
    (("cache",), run_cache_command),
    (("edit",), run_edit_command),
    (("tune",), run_tune_command),
)


def main(argv: list[str] | None = None) -> int:
    args = _build_parser().parse_args(argv)  # a usage error exits 2 here (argparse)
    console = Console(stderr=True)
    level = log_level(args)
    show_notices(level)
    show_progress(level <= logging.INFO)  # -q: no progress bar either
    try:
        runner = next((run for names, run in _DISPATCH if args.command in names), None)
        if runner is not None:
            runner(args)
        elif not run_facts_command(args):  # facts and audit say themselves which commands are theirs
            run_audit_command(args)
    except (LlmassayError, OSError) as exc:  # one line; 2 for what was given, 1 for a failure (cli/exits.py)
        error = as_error(exc)
        console.print(f"error: {error}", markup=False, highlight=False, soft_wrap=True)
        return error.exit_code
    except RegressionFound as exc:  # compare --fail-on-regression
        console.print(str(exc), markup=False, highlight=False, soft_wrap=True)
        return exc.exit_code
    except KeyboardInterrupt as exc:
        # A run counts what it kept (evaluate.RunInterrupted); other commands say it in general.
        console.print(str(exc) or INTERRUPTED.get(args.command, "interrupted"), markup=False, soft_wrap=True)
        return 130
    return 0


def entry() -> int:
    """The `llmassay` command: `main` behind the native-crash guard (crashguard)."""
    from llmassay import crashguard

    crashguard.install()
    return main()

