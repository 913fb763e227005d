"""The three corpus audits as library calls: stream the corpus once in batches through an
executor (local or Ray), merge the batch results in stream order, return a typed result.

The CLI only formats what these return; library users call them directly.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console

from llmassay.audit import contamination as contam
from llmassay.audit.dedup import DedupResult, DedupSettings, deduplicate
from llmassay.audit.executors import BatchExecutor, LocalExecutor
from llmassay.audit.dedup import exact_jaccard
from llmassay.audit.minhash import MinHashParams, SignatureBuilder, shingle_set
from llmassay.audit.normalise import normalise, text_hash
from llmassay.audit.pii import PiiOptions, PiiTally, detect_batch, detector_for, redact
from llmassay.audit.readers import CorpusSpec
from llmassay.audit.stream import BATCH_SIZE, StreamInfo, id_and_text, stream_batches, text_only, write_corpus
from llmassay.tasks.loader import load_task
from llmassay.types import LlmassayError


# -- contamination --------------------------------------------------------------------
@dataclass
class ContaminationAudit:
    tasks: dict[str, contam.TaskContamination]
    stream: StreamInfo
    settings: dict[str, Any]

    def report(self) -> dict[str, Any]:
        return {**contam.report_dict(self.tasks, self.settings), "stream": self.stream.as_dict()}

    def clean_ids(self) -> dict[str, list[str]]:
        return {name: t.clean_ids() for name, t in self.tasks.items()}


def audit_contamination(
    corpus: CorpusSpec,
    tasks: list[str],
    ngram: int | str = 13,
    item_field: str | None = None,
    executor: BatchExecutor | None = None,
    console: Console | None = None,
    batch_size: int = BATCH_SIZE,
    item_text: str = "question",
) -> ContaminationAudit:
    """Which items of `tasks` occur in the corpus (GPT-3 N-gram overlap, Dodge et al. exact
    match). Items are matched on their question field unless `item_field` names another
    field or `item_text="prompt"` asks for the rendered prompt; the report says which."""
    if not tasks:
        raise LlmassayError("--tasks: nothing given")
    if ngram != "auto" and not isinstance(ngram, int):
        raise LlmassayError(f"--ngram: '{ngram}' is not an integer or 'auto'")
    indexes, rules, texts = [], {}, {}
    for name in tasks:
        task = load_task(name, num_fewshot=0)
        source = contam.item_text_source(task, item_field, item_text)
        items = contam.items_for(task, source)
        n = contam.auto_ngram(items) if ngram == "auto" else int(ngram)
        rules[task.name] = (
            "auto: 5th-percentile input length in words, clamped to [8, 13] (GPT-3 appendix C)"
            if ngram == "auto"
            else "fixed"
        )
        texts[task.name] = source.describe()
        indexes.append(contam.build_index(task.name, items, n))
    tally = contam.Tally(indexes, rules, texts)
    executor = executor or LocalExecutor()
    info = StreamInfo.of(corpus)
    for _, hits in stream_batches(
        corpus, executor, contam.scan_batch, indexes, id_and_text, "contamination", console, info, batch_size
    ):
        tally.add(hits)
    settings = {
        "ngram": {ix.task: ix.n for ix in indexes},
        "ngram_option": ngram,
        "item_text": texts,
        "dirty_rule": "any N-gram of the item's input or label occurs in a document; an input shorter than N words must occur whole",
        "exact_match_rule": "normalised input occurs word-aligned in a document (input); input_and_label: also the "
        "normalised gold label in the same document, more often than any wrong choice (so a page listing all options "
        "without the answer is input-only)",
        "text_field": corpus.text_field,
        "executor": executor.name,
    }
    return ContaminationAudit(tally.finish(), info, settings)


# -- dedup ----------------------------------------------------------------------------
_BUILDERS: dict[MinHashParams, SignatureBuilder] = {}


def signature_batch(texts: list[str], params: MinHashParams) -> tuple[np.ndarray, list[int], list[bool]]:
    """Signatures, normalised-text hashes and emptiness of a batch (runs in a worker)."""
    builder = _BUILDERS.get(params) or _BUILDERS.setdefault(params, SignatureBuilder(params))
    normalised = [normalise(t) for t in texts]
    return builder.signatures(normalised), [text_hash(t) if t else 0 for t in normalised], [not t for t in normalised]


def shingle_set_batch(docs: list[tuple[int, str]], shingle: int) -> list[tuple[int, np.ndarray]]:
    """(index, shingle set) of each (index, text) in a batch (runs in a worker)."""
    return [(index, shingle_set(normalise(text), shingle)) for index, text in docs]


class ExactJaccard:
    """The true Jaccard of candidate pairs: a second pass over the corpus reads the shingle
    sets of the documents in a pair (only those are kept), then compares them."""

    def __init__(self, corpus: CorpusSpec, shingle: int, executor: BatchExecutor, console: Console | None,
                 batch_size: int) -> None:
        self.corpus, self.shingle, self.executor, self.console, self.batch_size = (
            corpus, shingle, executor, console, batch_size
        )
        self.stream: StreamInfo | None = None

    def __call__(self, pairs: np.ndarray) -> np.ndarray:
        needed = set(np.unique(pairs).tolist())
        self.stream = StreamInfo.of(self.corpus)
        sets: dict[int, np.ndarray] = {}
        chosen = lambda batch: [(d.index, d.text) for d in batch if d.index in needed]  # noqa: E731
        for _, found in stream_batches(
            self.corpus, self.executor, shingle_set_batch, self.shingle, chosen, "dedup: exact Jaccard",
            self.console, self.stream, self.batch_size,
        ):
            sets.update(found)
        return exact_jaccard(pairs, sets)


@dataclass
class DedupAudit:
    result: DedupResult
    doc_ids: list[str]
    stream: StreamInfo
    executor: str
    output: str | None = None
    verify_stream: StreamInfo | None = None  # the second pass of verify="exact", when it ran

    def report(self, max_clusters: int = 100) -> dict[str, Any]:
        ids = self.doc_ids
        return {
            "audit": "dedup",
            "settings": {**self.result.settings_dict(), "executor": self.executor},
            "counts": self.result.summary(),
            "output": self.output,
            "clusters": [[ids[i] for i in c] for c in self.result.clusters[:max_clusters]],
            "clusters_listed": min(max_clusters, len(self.result.clusters)),
            "stream": self.stream.as_dict(),
            "verify_stream": self.verify_stream.as_dict() if self.verify_stream else None,
        }

    def write_clusters(self, path: Path) -> None:
        """Every cluster as one JSON line: the kept document first."""
        with path.open("w", encoding="utf-8") as handle:
            for cluster in self.result.clusters:
                handle.write(
                    json.dumps({"kept": self.doc_ids[cluster[0]], "removed": [self.doc_ids[i] for i in cluster[1:]]})
                    + "\n"
                )


def audit_dedup(
    corpus: CorpusSpec,
    settings: DedupSettings,
    output: str | Path | None = None,
    executor: BatchExecutor | None = None,
    console: Console | None = None,
    batch_size: int = BATCH_SIZE,
) -> DedupAudit:
    """Exact and near-duplicate clusters; with `output`, a deduplicated JSONL corpus. With
    `settings.verify == "exact"` the LSH candidates are checked by their true Jaccard, read
    in a second pass over the corpus."""
    executor = executor or LocalExecutor()
    params = settings.minhash
    sig_parts: list[np.ndarray] = []
    doc_ids: list[str] = []
    first_seen: dict[int, int] = {}
    exact_of: list[int] = []
    empty: list[bool] = []
    info = StreamInfo.of(corpus)
    for docs, (sigs, hashes, empties) in stream_batches(
        corpus, executor, signature_batch, params, text_only, "dedup", console, info, batch_size
    ):
        sig_parts.append(sigs)
        for doc, h, is_empty in zip(docs, hashes, empties):
            doc_ids.append(doc.doc_id)
            empty.append(is_empty)
            exact_of.append(doc.index if is_empty else first_seen.setdefault(h, doc.index))
    perm = settings.num_perm
    sigs_all = np.concatenate(sig_parts) if sig_parts else np.empty((0, perm), dtype=np.uint32)
    jaccard = ExactJaccard(corpus, settings.shingle, executor, console, batch_size)
    result = deduplicate(
        sigs_all, np.asarray(exact_of, dtype=np.int64), np.asarray(empty, dtype=bool), settings, jaccard
    )
    audit = DedupAudit(result, doc_ids, info, executor.name, verify_stream=jaccard.stream)
    if output is not None:
        audit.output = str(write_corpus(corpus, Path(output), keep=result.keep))
    return audit


# -- PII ------------------------------------------------------------------------------
@dataclass
class PiiAudit:
    tally: PiiTally
    stream: StreamInfo
    settings: dict[str, Any]
    redacted: str | None = None

    def report(self) -> dict[str, Any]:
        return {
            "audit": "pii",
            "settings": self.settings,
            **self.tally.as_dict(),
            "redacted": self.redacted,
            "stream": self.stream.as_dict(),
        }


def audit_pii(
    corpus: CorpusSpec,
    redact_to: str | Path | None = None,
    phone_region: str = "US",
    presidio_model: str | None = None,
    executor: BatchExecutor | None = None,
    console: Console | None = None,
    batch_size: int = BATCH_SIZE,
) -> PiiAudit:
    """PII counts by type with masked examples; with `redact_to`, a redacted JSONL copy."""
    options = PiiOptions(phone_region, presidio_model)
    detector_for(options)  # fail here (missing package or model), before the stream starts
    executor = executor or LocalExecutor()
    tally = PiiTally()
    info = StreamInfo.of(corpus)
    handle = None
    if redact_to is not None:
        try:
            Path(redact_to).parent.mkdir(parents=True, exist_ok=True)
            handle = Path(redact_to).open("w", encoding="utf-8")
        except OSError as exc:
            raise LlmassayError(f"--redact: cannot write {redact_to} ({exc.strerror or exc})") from None
    try:
        for docs, findings in stream_batches(
            corpus, executor, detect_batch, options, id_and_text, "pii", console, info, batch_size
        ):
            for doc, found in zip(docs, findings):
                tally.add(doc.doc_id, doc.text, found)
                if handle is not None:
                    record = dict(doc.record) if doc.record is not None else {}
                    record[corpus.text_field] = redact(doc.text, found)
                    handle.write(json.dumps(record, ensure_ascii=False, default=str) + "\n")
    finally:
        if handle is not None:
            handle.close()
    settings = {
        "types": ["email", "phone", "ip_address", "credit_card", "iban"]
        + ([f"presidio-analyzer ({presidio_model}): types other than these"] if presidio_model else []),
        "validation": "phone: phonenumbers (Leniency.VALID); credit_card: issuer prefix + Luhn (python-stdnum) on "
        "the longest span of whole digit groups (one of 13-19 digits, or groups of 3-6); iban: the country's "
        "registry length, then mod-97 and BBAN format (python-stdnum); ip: ipaddress",
        "phone_region": phone_region,
        "text_field": corpus.text_field,
        "executor": executor.name,
        "normalisation": "none (offsets index the original text)",
    }
    return PiiAudit(tally, info, settings, str(redact_to) if redact_to is not None else None)
