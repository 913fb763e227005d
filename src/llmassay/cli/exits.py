"""What the command tells a CI job: exit codes, and how much it says on stderr (-v / -q).

Exit codes: 0 done; 1 a runtime failure (the server is unreachable or failing, the disk
is full: `RuntimeFailure`); 2 a usage error (argparse, or a `LlmassayError` about what
was given: an argument, a file, a model arg); 3 `compare --fail-on-regression` found a
regression; 130 interrupted (Ctrl-C).
"""

from __future__ import annotations

import argparse
import logging

from llmassay.types import LlmassayError, os_failure

EXIT_OK, EXIT_FAILURE, EXIT_USAGE, EXIT_REGRESSION, EXIT_INTERRUPTED = 0, 1, 2, 3, 130

EXIT_CODES_HELP = (
    "exit codes: 0 done; 1 runtime failure (server unreachable or failing, disk full); 2 usage error (bad "
    "argument, file or model arg); 3 regression found by `compare --fail-on-regression`; 130 interrupted"
)


class RegressionFound(Exception):
    """`compare --fail-on-regression` found B worse than A: not an error, a verdict (exit 3)."""

    exit_code = EXIT_REGRESSION


def as_error(exc: LlmassayError | OSError) -> LlmassayError:
    """An OSError nothing wrapped (a full disk mid-write) as the one line a LlmassayError is."""
    if isinstance(exc, LlmassayError):
        return exc
    where = f"{exc.filename}: " if exc.filename else ""
    return os_failure(f"{where}{exc.strerror or exc}", exc)


def add_verbosity_flags(parser: argparse.ArgumentParser) -> None:
    """-v / -q on the top parser and on every subcommand, so `llmassay -q run …` and
    `llmassay run … -q` both work (the subcommands' copies default to 'not given')."""
    parser.add_argument("-v", "--verbose", action="count", default=0,
                        help="say more on stderr (debug messages); repeatable")
    parser.add_argument("-q", "--quiet", action="count", default=0,
                        help="say less on stderr: warnings and errors only, no progress bar; -qq: errors only")
    for sub in _subparsers(parser):
        sub.add_argument("-v", "--verbose", action="count", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
        sub.add_argument("-q", "--quiet", action="count", default=argparse.SUPPRESS, help=argparse.SUPPRESS)


def _subparsers(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in dict.fromkeys(action.choices.values()):  # aliases map to the same parser
                found += [child, *_subparsers(child)]
    return found


def log_level(args: argparse.Namespace) -> int:
    """-v → DEBUG, none → INFO, -q → WARNING, -qq → ERROR; lm-eval's --verbosity LEVEL wins when given."""
    named = getattr(args, "verbosity", None)
    if named:
        return logging.getLevelName(named) if isinstance(logging.getLevelName(named), int) else logging.INFO
    steps = getattr(args, "verbose", 0) - getattr(args, "quiet", 0)
    return {1: logging.DEBUG, 0: logging.INFO, -1: logging.WARNING}.get(max(-2, min(1, steps)), logging.ERROR)
