"""`llmassay cache info|prune`: argument wiring and output only; the work is in
`llmassay.engine.cache_admin`."""

from __future__ import annotations

import argparse
import json
from datetime import datetime
from typing import Any

from rich.table import Table

from llmassay.terminal import stdout_console as _stdout


def _days(text: str) -> float:
    try:
        days = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--older-than: {text!r} is not a number of days") from None
    if not days >= 0:
        raise argparse.ArgumentTypeError(f"--older-than: {text} must be >= 0 days")
    return days


def _size(text: str) -> int:
    from llmassay.engine.cache_admin import parse_size

    try:
        return parse_size(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_cache_commands(sub: Any) -> None:
    cache = sub.add_parser("cache", help="what the llmassay home holds (request cache, models, indexes), and pruning it")
    verbs = cache.add_subparsers(dest="cache_command", required=True)
    info = verbs.add_parser("info", help="each part of the home with its size and entry count")
    info.add_argument("--json", action="store_true", help="print JSON instead of a table")
    prune = verbs.add_parser("prune", help="remove cache rows and files oldest first")
    prune.add_argument("--older-than", type=_days, default=None, metavar="DAYS",
                       help="remove entries written more than DAYS days ago")
    prune.add_argument("--max-size", type=_size, default=None, metavar="SIZE",
                       help="then remove the oldest entries until the home fits in SIZE (2G, 500M; 1K = 1024 bytes)")
    prune.add_argument("--dry-run", action="store_true", help="say what would be removed; remove nothing")
    prune.add_argument("--json", action="store_true", help="print JSON instead of a summary")
    prune.set_defaults(_cache_parser=prune)


def _count(n: int, unit: str) -> str:
    return f"{n:,} {unit[:-1] if n == 1 and unit.endswith('s') else unit}"


def _when(ts: float | None) -> str:
    return "—" if ts is None else datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M")


def run_cache_command(args: argparse.Namespace) -> None:
    from llmassay.engine.cache_admin import home_info, human_size, prune_home
    from llmassay.home import home_source, llmassay_home

    home = llmassay_home()
    out = _stdout()
    if args.cache_command == "info":
        parts = home_info(home)
        if args.json:
            print(json.dumps({"home": str(home), "source": home_source(), "bytes": sum(p.size for p in parts),
                              "parts": [p.as_dict() for p in parts]}, indent=2))
            return
        table = Table(title=f"llmassay home {home} (from {home_source()})")
        for col in ("part", "size", "entries", "oldest", "newest", "what"):
            table.add_column(col, justify="right" if col in ("size", "entries") else "left")
        for p in parts:
            kinds = ", ".join(f"{k} {n:,}" for k, n in p.by_kind.items())
            entries = _count(p.entries, p.unit) + (f" ({kinds})" if kinds else "")
            table.add_row(p.name, human_size(p.size), entries, _when(p.oldest), _when(p.newest), p.what)
        out.print(table)
        out.print(f"total {human_size(sum(p.size for p in parts))}", highlight=False)
        return
    if args.older_than is None and args.max_size is None:
        args._cache_parser.error("give --older-than DAYS and/or --max-size SIZE")
    result = prune_home(args.older_than, args.max_size, args.dry_run, home)
    if args.json:
        print(json.dumps(result.as_dict(), indent=2))
        return
    verb = "would remove" if args.dry_run else "removed"
    for part, (n, size) in result.removed.items():
        unit = "rows" if part == "request cache" else "items"
        out.print(f"{part}: {verb} {_count(n, unit)} ({human_size(size)})", highlight=False)
    if not result.removed:
        out.print("nothing to remove", highlight=False)
    after = "would be" if args.dry_run else "is now"
    out.print(f"home {home}: {human_size(result.size_before)}, {after} {human_size(result.size_after)}",
              highlight=False)
    for note in result.notes:
        out.print(f"note: {note}", highlight=False, soft_wrap=True)
