"""mkdocs hooks: the home page is the README, and the CLI reference is generated from the parsers.

Nothing here is hand-copied: `index.md` is README.md with its `docs/` link prefix dropped (the
README links into docs/ from the repository root), and the `<!-- cli-reference -->` marker in
cli.md becomes every command's and subcommand's `--help`, read from `llmassay.cli.app`'s parser.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MARKER = "<!-- cli-reference -->"


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:  # argparse keeps subparsers only here
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def cli_reference() -> str:
    """Markdown: `llmassay --help`, then each command's (and each subcommand's) help, in parser order."""
    sys.path.insert(0, str(ROOT / "src"))
    os.environ["COLUMNS"] = "100"  # argparse wraps to the terminal; the site is built anywhere
    from llmassay.cli.app import _build_parser

    parser = _build_parser()
    out = ["## `llmassay`", "", "```text", parser.format_help().rstrip(), "```", ""]

    def walk(prefix: str, sub: argparse.ArgumentParser) -> None:
        out.extend([f"### `{prefix}`", "", "```text", sub.format_help().rstrip(), "```", ""])
        for name, child in _subcommands(sub).items():
            walk(f"{prefix} {name}", child)

    for name, sub in _subcommands(parser).items():
        walk(f"llmassay {name}", sub)
    return "\n".join(out)


def readme_as_home() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    return re.sub(r"\]\(docs/", "](", text)


def on_page_markdown(markdown: str, page, config, files) -> str:  # noqa: ANN001 (mkdocs' signature)
    if page.file.src_uri == "index.md":
        return readme_as_home()
    if MARKER in markdown:
        return markdown.replace(MARKER, cli_reference())
    return markdown
