"""Streaming a corpus through an executor in batches, in order, with a meter; and the
second pass that rewrites a corpus (deduplicated or redacted)."""

from __future__ import annotations

import json
import os
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console

from llmassay.audit.executors import BatchExecutor
from llmassay.progress import Throughput, stream_meter
from llmassay.audit.readers import CorpusSpec, Document, ReadProblems, batched, read_corpus
from llmassay.types import LlmassayError

BATCH_SIZE = 256


@dataclass
class StreamInfo:
    """What every audit reports about the stream itself."""

    files: list[str]
    throughput: Throughput = field(default_factory=Throughput)
    problems: ReadProblems = field(default_factory=ReadProblems)

    @classmethod
    def of(cls, spec: CorpusSpec) -> StreamInfo:
        return cls([str(p) for p in spec.files()])

    def as_dict(self) -> dict[str, Any]:
        return {
            "files": self.files,
            "throughput": self.throughput.as_dict(),
            "skipped_lines": self.problems.count,
            "skipped_examples": self.problems.examples,
        }


def stream_batches(
    spec: CorpusSpec,
    executor: BatchExecutor,
    fn: Callable[[Any, Any], Any],
    shared: Any,
    payload: Callable[[list[Document]], Any],
    description: str,
    console: Console | None,
    info: StreamInfo,
    batch_size: int = BATCH_SIZE,
) -> Iterator[tuple[list[Document], Any]]:
    """(documents, fn(payload(documents), shared)) per batch, in stream order; the stream's
    throughput and skipped lines are recorded into `info`."""
    in_flight: deque[list[Document]] = deque()

    def payloads() -> Iterator[Any]:
        for batch in batched(read_corpus(spec, info.problems), batch_size):
            in_flight.append(batch)
            yield payload(batch)

    with stream_meter(description, spec.total_bytes(), console) as meter:
        for result in executor.map(fn, payloads(), shared):
            docs = in_flight.popleft()
            meter.advance(len(docs), sum(d.n_bytes for d in docs))
            yield docs, result
    info.throughput = meter.stats


def id_and_text(batch: list[Document]) -> list[tuple[str, str]]:
    return [(d.doc_id, d.text) for d in batch]


def text_only(batch: list[Document]) -> list[str]:
    return [d.text for d in batch]


def write_corpus(
    corpus: CorpusSpec, path: Path, keep: np.ndarray | None = None, transform: Callable[[Document], str] | None = None
) -> Path:
    """A second pass over the corpus writing JSONL: the kept documents, optionally with new text.
    Written to `<path>.part` and renamed when complete, so an interrupted pass never leaves
    a truncated copy that looks finished."""
    partial = path.with_name(path.name + ".part")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with partial.open("w", encoding="utf-8") as handle:
            for doc in read_corpus(corpus, ReadProblems()):
                if keep is not None and not keep[doc.index]:
                    continue
                record = dict(doc.record) if doc.record is not None else {corpus.text_field: doc.text}
                if transform is not None:
                    record[corpus.text_field] = transform(doc)
                handle.write(json.dumps(record, ensure_ascii=False, default=str) + "\n")
        os.replace(partial, path)
    except OSError as exc:
        raise LlmassayError(f"{path}: cannot write ({exc.strerror or exc})") from None
    finally:
        partial.unlink(missing_ok=True)
    return path
