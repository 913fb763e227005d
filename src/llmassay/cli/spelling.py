"""One spelling for output locations: `--output-path DIR` wherever an option names a folder,
`--output FILE` where it names one file. Older spellings stay as hidden aliases."""

from __future__ import annotations

import argparse
from typing import Any


def output_option(parser: argparse.ArgumentParser, flag: str, *old: str, **kwargs: Any) -> None:
    """`flag` (--output-path for a folder, --output for a file) with `old` spellings still accepted,
    unlisted in --help; `args.output_path` / `args.output` either way."""
    dest = flag.lstrip("-").replace("-", "_")
    # a required option is required in either spelling: one of a required group (the hidden
    # spellings are left out of its error message)
    target: Any = parser.add_mutually_exclusive_group(required=True) if kwargs.pop("required", False) else parser
    target.add_argument(flag, dest=dest, metavar="DIR" if flag == "--output-path" else "FILE", **kwargs)
    for alias in old:  # SUPPRESS: the alias sets no default of its own
        target.add_argument(alias, dest=dest, default=argparse.SUPPRESS, help=argparse.SUPPRESS)
