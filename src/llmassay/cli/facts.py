"""`llmassay factcheck`, `llmassay index build` and `llmassay kb edit|stats`: argument wiring
and output only; the work is in `llmassay.factuality` (imported lazily, so `llmassay --help`
does not load the KB, bm25s or sentence-transformers)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from rich.table import Table

from llmassay.cli.spelling import output_option
from llmassay.terminal import stdout_console as _stdout
from llmassay.types import LlmassayError

COMMANDS = ("factcheck", "index", "kb")


def add_facts_commands(sub: Any) -> None:
    """Adds `factcheck`, `index build` and `kb edit|stats` to the main parser."""
    check = sub.add_parser("factcheck", help="verify answers from a JSONL file against the country KB (no model)")
    check.add_argument("--answers", required=True, help='JSONL: {"id", "answer"[, "question", "country", "field"]} per line; a short answer ("Lima") is read as the answer to its question')
    check.add_argument("--kb", default=None, help="a KB directory (default: the bundled KB)")
    check.add_argument("--output-path", required=True, metavar="DIR",
                       help="directory for factcheck.jsonl and summary.json")
    check.add_argument("--seed", type=int, default=0, help="bootstrap seed for the CIs")

    index = sub.add_parser("index", help="retrieval indexes over the KB passages")
    kinds = index.add_subparsers(dest="index_command", required=True)
    build = kinds.add_parser("build", help="build a bm25 or dense index (with a copy of its KB)")
    build.add_argument("--kb", default=None, help="a KB directory (default: the bundled KB)")
    output_option(build, "--output-path", "--out", required=True, help="the index directory to write")
    build.add_argument("--kind", default="bm25", choices=("bm25", "dense"), help="bm25 (bm25s) or dense (MiniLM)")

    kb = sub.add_parser("kb", help="the offline country knowledge base")
    acts = kb.add_subparsers(dest="kb_command", required=True)
    edit = acts.add_parser("edit", help="write a copy of the KB with chosen facts changed (counterfactuals)")
    edit.add_argument("--kb", default=None, help="the KB to copy (default: the bundled KB)")
    edit.add_argument("--facts", required=True,
                      help="comma-separated CODE.field (e.g. PE.capital,FR.capital), CODE.* or all:FIELD")
    output_option(edit, "--output-path", "--out", required=True, help="the KB directory to write")
    edit.add_argument("--seed", type=int, default=0)
    stats = acts.add_parser("stats", help="sizes, source disagreement per field, verifier quality on planted errors")
    stats.add_argument("--kb", default=None)
    stats.add_argument("--planted", type=int, default=2, help="errors planted per profile (default 2)")
    stats.add_argument("--json", default=None, help="also write the figures to this JSON file")


def run_facts_command(args: argparse.Namespace) -> bool:
    """Runs a factuality command; False when the command is someone else's."""
    if args.command == "factcheck":
        _factcheck(args)
    elif args.command == "index":
        _index_build(args)
    elif args.command == "kb" and args.kb_command == "edit":
        _kb_edit(args)
    elif args.command == "kb":
        _kb_stats(args)
    else:
        return False
    return True


def _factcheck(args: argparse.Namespace) -> None:
    from llmassay.factuality.factcheck import check_answer, read_answers, summarise
    from llmassay.factuality.kb import load_kb

    kb = load_kb(args.kb)
    records = read_answers(Path(args.answers))
    results = [check_answer(kb, r) for r in records]
    out = Path(args.output_path)
    out.mkdir(parents=True, exist_ok=True)
    (out / "factcheck.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in results),
                                         encoding="utf-8")
    metrics = summarise(results, args.seed)
    (out / "summary.json").write_text(json.dumps({k: m.as_dict() for k, m in metrics.items()}, indent=1),
                                      encoding="utf-8")
    table = Table(title=f"factcheck: {len(results)} answers ({kb.origin} KB)")
    for column in ("metric", "value", "95% CI", "n"):
        table.add_column(column)
    for name, m in metrics.items():
        table.add_row(name, f"{m.value:.3f}", f"[{m.ci_low:.3f}, {m.ci_high:.3f}]", str(m.n))
    _stdout().print(table)
    _stdout().print(f"per-fact verdicts: {out / 'factcheck.jsonl'}", markup=False, soft_wrap=True)


def _index_build(args: argparse.Namespace) -> None:
    from llmassay.factuality.kb import load_kb
    from llmassay.factuality.retrieval import Index

    index = Index(load_kb(args.kb), args.kind)
    path = index.save(Path(args.output_path))
    _stdout().print(f"{args.kind} index of {len(index.ids)} passages: {path}", markup=False, soft_wrap=True)


def _kb_edit(args: argparse.Namespace) -> None:
    from llmassay.factuality.edit import edit_kb
    from llmassay.factuality.kb import load_kb

    kb = load_kb(args.kb)
    facts: list[str] = []
    for item in (x.strip() for x in args.facts.split(",") if x.strip()):
        if item.startswith("all:"):
            facts += [f"{code}.{item[4:]}" for code in sorted(kb.countries)]
        else:
            facts.append(item)
    if not facts:
        raise LlmassayError("--facts: name at least one CODE.field")
    edited = edit_kb(kb, facts, args.seed)
    path = edited.save(Path(args.output_path))
    _stdout().print(f"{len(edited.edits) - len(kb.edits)} facts edited: {path}", markup=False, soft_wrap=True)


def _kb_stats(args: argparse.Namespace) -> None:
    from llmassay.factuality.kb import disagreement, load_kb
    from llmassay.factuality.planted import verifier_quality

    kb = load_kb(args.kb)
    rates = disagreement(kb)
    table = Table(title=f"{kb.origin} KB: {len(kb.countries)} countries, {len(kb.passages)} passages")
    for column in ("field", "both sources", "disagree", "rate"):
        table.add_column(column)
    for name, r in rates.items():
        table.add_row(name, str(r["both"]), str(r["disagree"]), f"{r['rate']:.1%}")
    _stdout().print(table)
    quality = verifier_quality(kb, args.planted)
    table = Table(title=f"verifier on planted errors ({args.planted} per profile)")
    for column in ("path", "error", "planted", "flagged", "precision", "recall"):
        table.add_column(column)
    for path, kinds in quality.items():
        for kind, t in kinds.items():
            table.add_row(path, kind, str(t["planted"]), str(t["flagged"]), f"{t['precision']:.3f}",
                          f"{t['recall']:.3f}")
    _stdout().print(table)
    if args.json:
        Path(args.json).write_text(json.dumps({"disagreement": rates, "verifier": quality}, indent=1),
                                   encoding="utf-8")
