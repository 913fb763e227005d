"""Streaming corpus readers: JSONL and plain text (optionally .gz or .zst), and Parquet.

Documents are yielded one at a time, so memory is bounded by what an audit keeps (its
index), not by the corpus. A malformed line is reported as `file:line: reason` and
skipped; nothing is dropped silently.
"""

from __future__ import annotations

import glob
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from llmassay.audit.compressed import corrupt_errors, open_text, strip_compression
from llmassay.types import LlmassayError

TEXT_MODES = ("line", "file")
MAX_REPORTED_PROBLEMS = 50


@dataclass
class Document:
    """One corpus document: its text, where it came from, and the record it came in."""

    index: int  # position in the stream, 0-based, over all files
    doc_id: str  # "file:line" (JSONL, text), "file#rowN" (Parquet, 0-based) or "file" (text, one per file)
    text: str
    record: dict[str, Any] | None = None  # the JSON/Parquet record, kept for rewriting the corpus

    @property
    def n_bytes(self) -> int:
        return len(self.text.encode("utf-8"))


@dataclass
class ReadProblems:
    """Malformed lines seen while streaming: counted in full, the first few kept verbatim."""

    count: int = 0
    examples: list[str] = field(default_factory=list)
    on_problem: Callable[[str], None] | None = None

    def add(self, message: str) -> None:
        self.count += 1
        if len(self.examples) < MAX_REPORTED_PROBLEMS:
            self.examples.append(message)
        if self.on_problem is not None:
            self.on_problem(message)


@dataclass(frozen=True)
class CorpusSpec:
    """Which files, and how to find the text in them."""

    paths: tuple[str, ...]
    text_field: str = "text"
    text_mode: str = "line"  # plain text: one document per line, or per file
    id_field: str | None = None

    def files(self) -> list[Path]:
        """Patterns expanded (shells that leave `data/*.jsonl` unexpanded still work), in order."""
        if self.text_mode not in TEXT_MODES:
            raise LlmassayError(f"--text-mode: '{self.text_mode}' is not one of {', '.join(TEXT_MODES)}")
        found: list[Path] = []
        for pattern in self.paths:
            matches = sorted(glob.glob(pattern)) if glob.has_magic(pattern) else [pattern]
            if not matches:
                raise LlmassayError(f"--corpus: no file matches '{pattern}'")
            for match in matches:
                path = Path(match)
                if path.is_dir():
                    raise LlmassayError(
                        f"--corpus: '{path}' is a directory; give files or a pattern like {path}/*.jsonl"
                    )
                if not path.exists():
                    raise LlmassayError(f"--corpus: no such file '{path}'")
                found.append(path)
        if not found:
            raise LlmassayError("--corpus: no files given")
        return found

    def total_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.files())


def read_corpus(spec: CorpusSpec, problems: ReadProblems | None = None) -> Iterator[Document]:
    """Every document of every file, in order; problems are reported into `problems`."""
    problems = problems if problems is not None else ReadProblems()
    index = 0
    for path in spec.files():
        for doc_id, text, record in _read_file(path, spec, problems):
            yield Document(index, doc_id, text, record)
            index += 1


def _kind(path: Path) -> str:
    name = strip_compression(path.name.lower())
    if name.endswith((".jsonl", ".json", ".ndjson")):
        return "jsonl"
    if name.endswith(".parquet"):
        return "parquet"
    return "text"


def _read_file(path: Path, spec: CorpusSpec, problems: ReadProblems) -> Iterator[tuple[str, str, Any]]:
    kind = _kind(path)
    try:
        if kind == "parquet":
            yield from _read_parquet(path, spec, problems)
            return
        with open_text(path) as handle:
            if kind == "jsonl":
                yield from _read_jsonl(path, handle, spec, problems)
            elif spec.text_mode == "file":
                text = handle.read()
                if _is_utf8(text):
                    yield str(path), text, None
                else:
                    problems.add(f"{path}: not valid UTF-8; skipped")
            else:
                for number, line in enumerate(handle, start=1):
                    text = line.rstrip("\n")
                    if not text.strip():
                        continue
                    if not _is_utf8(text):
                        problems.add(f"{path}:{number}: not valid UTF-8; skipped")
                        continue
                    yield f"{path}:{number}", text, None
    except OSError as exc:
        raise LlmassayError(f"{path}: cannot read ({exc.strerror or exc})") from None
    except corrupt_errors() as exc:  # a truncated or corrupt .gz / .zst
        raise LlmassayError(f"{path}: corrupt compressed file ({exc})") from None


def _is_utf8(text: str) -> bool:
    """Files are opened with surrogateescape so one bad line does not end the stream."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _read_jsonl(path: Path, handle: TextIO, spec: CorpusSpec, problems: ReadProblems) -> Iterator[tuple[str, str, Any]]:
    for number, line in enumerate(handle, start=1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        if not _is_utf8(line):
            problems.add(f"{where}: not valid UTF-8; skipped")
            continue
        try:
            record = json.loads(line)
        except (ValueError, RecursionError) as exc:
            reason = f"{exc.msg}, column {exc.colno}" if isinstance(exc, json.JSONDecodeError) else type(exc).__name__
            problems.add(f"{where}: invalid JSON ({reason}); skipped")
            continue
        if not isinstance(record, dict):
            problems.add(f"{where}: not a JSON object; skipped")
            continue
        text = record.get(spec.text_field)
        if not isinstance(text, str):
            what = "missing" if text is None else f"not a string ({type(text).__name__})"
            problems.add(f"{where}: field '{spec.text_field}' is {what}; skipped")
            continue
        yield _doc_id(where, record, spec), text, record


def _doc_id(where: str, record: dict[str, Any], spec: CorpusSpec) -> str:
    if spec.id_field and spec.id_field in record:
        return str(record[spec.id_field])
    return where


def _read_parquet(path: Path, spec: CorpusSpec, problems: ReadProblems) -> Iterator[tuple[str, str, Any]]:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise LlmassayError("reading Parquet needs pyarrow: pip install 'llmassay[audit]'") from None
    try:
        parquet = pq.ParquetFile(path)
    except Exception as exc:  # pyarrow raises ArrowInvalid, OSError, ... for a file that is not Parquet
        raise LlmassayError(f"{path}: not a readable Parquet file ({str(exc).splitlines()[0]})") from None
    names = parquet.schema_arrow.names
    if spec.text_field not in names:
        raise LlmassayError(f"{path}: no column '{spec.text_field}' (columns: {', '.join(names)}); use --text-field")
    row = 0
    for batch in parquet.iter_batches(batch_size=1024):
        for record in batch.to_pylist():
            where = f"{path}#row{row}"
            row += 1
            text = record.get(spec.text_field)
            if not isinstance(text, str):
                problems.add(
                    f"{where}: column '{spec.text_field}' is {'null' if text is None else type(text).__name__}; skipped"
                )
                continue
            yield _doc_id(where, record, spec), text, record


def batched(docs: Iterator[Document], size: int) -> Iterator[list[Document]]:
    """Consecutive lists of up to `size` documents (the unit an executor ships to a worker)."""
    batch: list[Document] = []
    for doc in docs:
        batch.append(doc)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch
