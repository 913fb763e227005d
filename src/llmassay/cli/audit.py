"""`llmassay audit contamination|dedup|pii` and `llmassay rescore`: argument wiring and
output formatting only; the work is in `llmassay.audit` (imported lazily, so `llmassay
--help` does not pay for numpy hashing tables or datasketch)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from llmassay.cli.spelling import output_option
from llmassay.terminal import fitted_tables, stdout_console as _stdout
from llmassay.types import LlmassayError

DEFAULT_OUTPUT_DIR = "runs/audit"


def add_audit_commands(sub: Any) -> None:
    """Adds `audit` (with three subcommands) and `rescore` to the main parser."""
    audit = sub.add_parser("audit", help="audit a training corpus: contamination, dedup, pii")
    kinds = audit.add_subparsers(dest="audit_command", required=True)

    contam = kinds.add_parser("contamination", help="task items that occur in the corpus (GPT-3 N-grams, exact match)")
    _corpus_args(contam)
    contam.add_argument("--tasks", required=True, help="comma-separated task names or files")
    contam.add_argument("--ngram", default="13", help="N for word N-grams, or 'auto' (GPT-3 appendix C; default 13)")
    contam.add_argument(
        "--item-text",
        default="question",
        choices=("question", "prompt"),
        help="match each item's question field (default: the longest document field found in every prompt) "
        "or its rendered prompt, template words included",
    )
    contam.add_argument("--item-field", default=None, help="match this document field (overrides --item-text)")

    dedup = kinds.add_parser("dedup", help="exact and near-duplicate documents (MinHash LSH)")
    _corpus_args(dedup)
    dedup.add_argument("--threshold", type=float, default=0.8, help="Jaccard threshold on word shingles (default 0.8)")
    dedup.add_argument("--num-perm", type=int, default=128, help="MinHash permutations (default 128)")
    dedup.add_argument("--shingle", type=int, default=5, help="words per shingle (default 5)")
    dedup.add_argument("--bands", type=int, default=None, help="LSH bands (default: recall >= 0.99 at the threshold)")
    dedup.add_argument("--seed", type=int, default=1, help="MinHash seed (datasketch's default 1)")
    dedup.add_argument(
        "--verify",
        default="exact",
        choices=("exact", "estimate"),
        help="check LSH candidates by their true Jaccard (default; a second pass reads the candidates' shingles) "
        "or by the MinHash estimate (one pass; misses about half the pairs at the threshold)",
    )
    dedup.add_argument(
        "--output", default=None, help="deduplicated JSONL corpus (default OUTPUT_PATH/deduplicated.jsonl)"
    )

    pii = kinds.add_parser("pii", help="e-mails, phones, IPs, card numbers (Luhn), IBANs; counts and redaction")
    _corpus_args(pii)
    pii.add_argument("--redact", default=None, help="write a redacted JSONL copy here")
    pii.add_argument("--phone-region", default="US", help="region for numbers without a country code (default US)")
    pii.add_argument(
        "--presidio",
        default=None,
        metavar="SPACY_MODEL",
        help="also run presidio-analyzer (extra [presidio]) with this installed spaCy model, or blank:en",
    )

    rescore = sub.add_parser("rescore", help="accuracy of a run on clean vs dirty items (after audit contamination)")
    rescore.add_argument("run_dir", help="an --output-path of `llmassay run`")
    rescore.add_argument(
        "--clean-ids", required=True, help="clean_ids.json from audit contamination, or one id per line"
    )
    rescore.add_argument("--output", default=None, help="also write the result as JSON here")


def _corpus_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--corpus", nargs="+", required=True, help="JSONL or text (optionally .gz or .zst), Parquet files, or glob patterns"
    )
    parser.add_argument("--text-field", default="text", help="JSON/Parquet field holding the text (default text)")
    parser.add_argument(
        "--text-mode", default="line", choices=("line", "file"), help="plain text: a document per line or per file"
    )
    parser.add_argument("--id-field", default=None, help="field naming documents (default: file:line)")
    output_option(parser, "--output-path", "--output-dir", default=DEFAULT_OUTPUT_DIR,
                  help=f"where reports go (default {DEFAULT_OUTPUT_DIR})")
    parser.add_argument(
        "--executor", default="local", choices=("local", "ray"), help="local (default) or ray: shard over workers"
    )
    parser.add_argument("--num-cpus", type=int, default=None, help="ray: workers to start (default: all cores)")
    parser.add_argument("--batch-size", type=int, default=256, help="documents per batch sent to a worker")


def run_audit_command(args: argparse.Namespace) -> bool:
    """Runs `audit …` or `rescore`; False when the command is someone else's."""
    if args.command == "audit":
        _audit(args)
        return True
    if args.command == "rescore":
        _rescore(args)
        return True
    return False


def _audit(args: argparse.Namespace) -> None:
    from llmassay.audit import CorpusSpec, make_executor

    if args.batch_size <= 0:
        raise LlmassayError("--batch-size must be a positive integer")
    corpus = CorpusSpec(tuple(args.corpus), args.text_field, args.text_mode, args.id_field)
    corpus.files()  # fail on a missing file before starting workers
    out_dir = Path(args.output_path)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise LlmassayError(f"--output-path: cannot create {out_dir} ({exc.strerror or exc})") from None
    executor = make_executor(args.executor, args.num_cpus)
    console = Console(stderr=True)
    try:
        handler = {"contamination": _contamination, "dedup": _dedup, "pii": _pii}[args.audit_command]
        handler(args, corpus, executor, console, out_dir)
    finally:
        executor.close()


def _write_json(path: Path, data: Any) -> Path:
    try:
        path.write_text(json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n", encoding="utf-8")
    except OSError as exc:
        raise LlmassayError(f"{path}: cannot write ({exc.strerror or exc})") from None
    return path


def _stream_line(stream: dict[str, Any]) -> str:
    t = stream["throughput"]
    line = f"{t['docs']:,} docs · {t['bytes'] / 1e6:,.1f} MB · {t['seconds']:.1f} s · {t['docs_per_s']:,.0f} docs/s · {t['mb_per_s']:.2f} MB/s"
    if stream["skipped_lines"]:
        line += f" · skipped {stream['skipped_lines']} malformed (first: {stream['skipped_examples'][0]})"
    return line


def _contamination(args: argparse.Namespace, corpus: Any, executor: Any, console: Console, out_dir: Path) -> None:
    from llmassay.audit import audit_contamination

    ngram: int | str = args.ngram
    if ngram != "auto":
        try:
            ngram = int(ngram)
        except ValueError:
            raise LlmassayError(f"--ngram: '{args.ngram}' is not an integer or 'auto'") from None
    tasks = [t for t in args.tasks.split(",") if t]
    audit = audit_contamination(
        corpus, tasks, ngram, args.item_field, executor, console, args.batch_size, item_text=args.item_text
    )
    report_path = _write_json(out_dir / "contamination.json", audit.report())
    ids_path = _write_json(out_dir / "clean_ids.json", audit.clean_ids())
    table = Table(title="contamination")
    for column in ("task", "N", "items", "dirty", "fraction", "input match", "input+label match"):
        table.add_column(column)
    for t in audit.tasks.values():
        table.add_row(
            t.task,
            str(t.n),
            str(t.items),
            str(t.dirty),
            f"{t.fraction_dirty:.3f}",
            str(t.input_contaminated),
            str(t.input_and_label_contaminated),
        )
    out = _stdout()
    out.print(table)
    texts = "\n".join(f"{t.task}: matched {t.item_text}" for t in audit.tasks.values())
    out.print(
        f"{texts}\n{_stream_line(audit.report()['stream'])}\nreport: {report_path} · clean ids: {ids_path}",
        soft_wrap=True,
    )


def _dedup(args: argparse.Namespace, corpus: Any, executor: Any, console: Console, out_dir: Path) -> None:
    from llmassay.audit import DedupSettings, audit_dedup

    settings = DedupSettings(args.threshold, args.num_perm, args.shingle, args.seed, args.bands, args.verify)
    output = Path(args.output) if args.output else out_dir / "deduplicated.jsonl"
    audit = audit_dedup(corpus, settings, output, executor, console, args.batch_size)
    report = audit.report()
    report_path = _write_json(out_dir / "dedup.json", report)
    audit.write_clusters(out_dir / "dedup_clusters.jsonl")
    counts = report["counts"]
    table = Table(
        title=f"dedup (threshold {settings.threshold}, {audit.result.bands} bands × {audit.result.rows} rows, "
        f"{settings.verify} Jaccard)"
    )
    for column in ("docs", "exact dup", "near dup", "kept", "clusters", "LSH candidates", "verified pairs"):
        table.add_column(column)
    table.add_row(
        *(
            f"{counts[k]:,}"
            for k in (
                "docs",
                "exact_duplicate_docs",
                "near_duplicate_docs",
                "kept_docs",
                "clusters",
                "lsh_candidate_pairs",
                "verified_pairs",
            )
        )
    )
    out = _stdout()
    out.print(table)
    out.print(
        f"{_stream_line(report['stream'])}\nreport: {report_path} · clusters: {out_dir / 'dedup_clusters.jsonl'} · "
        f"deduplicated corpus: {audit.output}",
        soft_wrap=True,
    )


def _pii(args: argparse.Namespace, corpus: Any, executor: Any, console: Console, out_dir: Path) -> None:
    from llmassay.audit import audit_pii

    audit = audit_pii(
        corpus,
        args.redact,
        args.phone_region,
        args.presidio,
        executor=executor,
        console=console,
        batch_size=args.batch_size,
    )
    report = audit.report()
    report_path = _write_json(out_dir / "pii.json", report)
    table = Table(title="personal data")
    for column in ("type", "count", "first example (doc, offsets, masked)"):
        table.add_column(column)
    for kind, count in report["counts"].items():
        first = (report["examples"].get(kind) or [None])[0]
        example = f"{first['doc_id']} [{first['start']}:{first['end']}] {first['preview']}" if first else ""
        table.add_row(kind, f"{count:,}", example)
    out = _stdout()
    out.print(table)
    redacted = f" · redacted copy: {audit.redacted}" if audit.redacted else ""
    out.print(
        f"{report['docs_with_pii']:,} documents with personal data · {_stream_line(report['stream'])}\n"
        f"report: {report_path}{redacted}",
        soft_wrap=True,
    )


def _rescore(args: argparse.Namespace) -> None:
    from llmassay.audit import rescore

    result = rescore(args.run_dir, args.clean_ids)
    cell = lambda m: f"{m.value:.3f} [{m.ci_low:.3f}, {m.ci_high:.3f}] n={m.n}" if m.n else "n=0"  # noqa: E731
    rows = [[task, s.metric, cell(s.all), cell(s.clean), cell(s.dirty)] for task, scores in result.items() for s in scores]
    out = _stdout()
    # Plain text cells: a metric's "[variant]" (brittleness/acc[case_upper]) is no rich markup tag.
    for table in fitted_tables(f"rescore: {args.run_dir}", ("task", "metric", "all", "clean", "dirty"), rows,
                               out.width, keys=2):
        out.print(table)
    if args.output:
        _write_json(Path(args.output), {task: [s.as_dict() for s in scores] for task, scores in result.items()})

