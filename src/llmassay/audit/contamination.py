"""Benchmark contamination: which task items occur in a training corpus.

Two published checks, run in one streaming pass:
- GPT-3 (Brown et al. 2020, appendix C): an item is *dirty* if any of its N-grams of
  normalised words occurs in any corpus document (N = 13, or `auto`: the 5th percentile of
  the task's input lengths in words, clamped to [8, 13]); an item shorter than N words is
  dirty when it occurs whole.
- Dodge et al. 2021: normalised exact match of the item's input (*input contamination*)
  and of input and label in the same document (*input-and-label contamination*).

An item's input is its question field by default (the string field of the document that
occurs in every rendered prompt), not the prompt: template words ("Question:", "A.",
"Answer:") would make exact match find only copies laid out in our template and would
inflate auto-N (bundled MMLU: 5th-percentile input 21 words with template, 7 without).

The index holds the task items' N-grams (small); the corpus only streams through it.
Hash hits are confirmed word by word, so a hash collision cannot make an item dirty.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from llmassay.audit.normalise import Normalisation, ngram_hashes, word_hashes, words
from llmassay.tasks.loader import Task, TaskError
from llmassay.types import LlmassayError

MAX_DETAILS_PER_ITEM = 20
AUTO_MIN_N, AUTO_MAX_N = 8, 13


@dataclass(frozen=True)
class Item:
    """One task item as normalised words: the input the model sees and the gold label."""

    task: str
    id: str
    input_words: tuple[str, ...]
    label_words: tuple[str, ...]
    wrong_labels: tuple[tuple[str, ...], ...] = ()  # the other choices (multiple choice)


ITEM_TEXTS = ("question", "prompt")


@dataclass(frozen=True)
class ItemText:
    """Which text of an item is matched: a document field, or the rendered prompt."""

    field: str | None  # None: the zero-shot prompt without the task description
    how: str  # for the report: where the choice came from

    def describe(self) -> str:
        source = f"document field '{self.field}'" if self.field else "zero-shot prompt without the task description"
        return f"{source} ({self.how}), plus the gold answer's text"


def item_text_source(task: Task, item_field: str | None = None, item_text: str = "question") -> ItemText:
    """`item_field` if given; else (`item_text="question"`) the question field the prompt
    is built from, so template words ("Question:", "A.", "Answer:") neither hide a leak laid
    out differently nor inflate auto-N; else the rendered prompt."""
    if item_text not in ITEM_TEXTS:
        raise LlmassayError(f"--item-text: '{item_text}' is not one of {', '.join(ITEM_TEXTS)}")
    if item_field:
        return ItemText(item_field, "--item-field")
    if item_text == "prompt":
        return ItemText(None, "--item-text prompt")
    found = question_field(task)
    if found is None:
        return ItemText(None, "no document field occurs in every prompt")
    return ItemText(found, "the longest document field found in every rendered prompt")


def question_field(task: Task) -> str | None:
    """The document's string field that occurs in every item's rendered text, the longest
    on average (MMLU: `question`, not a choice; a template that only rearranges fields
    therefore matches on the question itself). None when no field qualifies."""
    totals: dict[str, int] | None = None
    for sample in task.samples:
        shown = _item_prompt(task, sample)
        present = {
            key: len(value.strip())
            for key, value in sample.doc.items()
            if isinstance(value, str) and value.strip() and value.strip() in shown
        }
        totals = present if totals is None else {k: totals[k] + n for k, n in present.items() if k in totals}
        if not totals:
            return None
    return max(totals, key=lambda k: (totals[k], k)) if totals else None


def _item_prompt(task: Task, sample: Any) -> str:
    # The loader always puts the description first, so it is a prefix of every prompt.
    prefix = task.builder.description_text(sample.doc, sample.id) if task.builder else ""
    return sample.prompt[len(prefix) :]


def task_items(task: Task, item_field: str | None = None, item_text: str = "question") -> list[Item]:
    """The task's items, matched on the text `item_text_source` picks (by default the question field)."""
    return items_for(task, item_text_source(task, item_field, item_text))


def items_for(task: Task, source: ItemText) -> list[Item]:
    """input = the source's text, label = the text of the correct answer. When choices are
    bare letters (MMLU's A-D) and the document has a `choices` list, the label is the
    option's text, which is what a leaked copy would contain."""
    items = []
    for sample in task.samples:
        if source.field is None:
            text = _item_prompt(task, sample)
        else:
            value = sample.doc.get(source.field)
            if not isinstance(value, str):
                raise TaskError(
                    f"{task.source}: item '{sample.id}': --item-field '{source.field}' is not a string field"
                )
            text = value
        labels = _choice_texts(sample.choices, sample.doc)
        if labels is None:
            label, wrong = str(sample.target), []
        else:
            label, wrong = labels[int(sample.target)], [c for i, c in enumerate(labels) if i != int(sample.target)]
        items.append(
            Item(task.name, sample.id, tuple(words(text)), tuple(words(label)), tuple(tuple(words(w)) for w in wrong))
        )
    return items


def _choice_texts(choices: list[str] | None, doc: dict[str, Any]) -> list[str] | None:
    """The answer options as a leaked copy would print them: bare letters are replaced by
    the document's `choices` texts when it has them."""
    if choices is None:
        return None
    options = doc.get("choices")
    if all(len(c.strip()) <= 1 for c in choices) and isinstance(options, list) and len(options) == len(choices):
        return [str(o) for o in options]
    return list(choices)


def auto_ngram(items: list[Item]) -> int:
    """GPT-3 appendix C: the 5th-percentile item length in words, clamped to [8, 13]. The
    length is the input's: N-grams are taken within the input and within the label, never
    across them, so counting the label would choose an N that short inputs cannot hold."""
    lengths = [len(i.input_words) for i in items]
    if not lengths:
        return AUTO_MAX_N
    p5 = float(np.percentile(lengths, 5))
    return int(min(AUTO_MAX_N, max(AUTO_MIN_N, math.floor(p5))))


# -- the index ------------------------------------------------------------------------
@dataclass
class TaskIndex:
    """N-gram and whole-input hashes of one task's items."""

    task: str
    n: int
    items: list[Item]
    keys: np.ndarray  # sorted unique N-gram hashes
    where: dict[int, list[tuple[int, int, int]]]  # hash → (item, segment 0=input 1=label, word position)
    short: dict[
        int, tuple[np.ndarray, dict[int, list[int]]]
    ]  # length → (sorted hashes, hash → items) for inputs < n words


def build_index(task: str, items: list[Item], n: int) -> TaskIndex:
    if not 1 <= n <= 64:
        raise LlmassayError(f"--ngram: {n} is out of range (1-64, or 'auto')")
    where: dict[int, list[tuple[int, int, int]]] = defaultdict(list)
    short_maps: dict[int, dict[int, list[int]]] = defaultdict(lambda: defaultdict(list))
    for idx, item in enumerate(items):
        for segment, seq in enumerate((item.input_words, item.label_words)):
            for pos, value in enumerate(ngram_hashes(word_hashes(" ".join(seq)), n).tolist()):
                where[value].append((idx, segment, pos))
        length = len(item.input_words)
        if 0 < length < n:
            value = int(ngram_hashes(word_hashes(" ".join(item.input_words)), length)[0])
            short_maps[length][value].append(idx)
    keys = np.array(sorted(where), dtype=np.uint64)
    short = {length: (np.array(sorted(m), dtype=np.uint64), dict(m)) for length, m in sorted(short_maps.items())}
    return TaskIndex(task, n, items, keys, dict(where), short)


# -- scanning (runs in a worker) ------------------------------------------------------
@dataclass(frozen=True)
class Hit:
    """One confirmed match of an item in a document."""

    task: str
    item: int
    kind: str  # "ngram" | "input" | "input_and_label"
    doc_id: str
    word_offset: int  # in the document's normalised words
    text: str  # the matched normalised words


def _member(keys: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Positions of `values` found in the sorted array `keys`."""
    if not len(keys) or not len(values):
        return np.empty(0, dtype=np.int64)
    idx = np.searchsorted(keys, values).clip(max=len(keys) - 1)
    return np.flatnonzero(keys[idx] == values)


def scan_batch(docs: list[tuple[str, str]], indexes: list[TaskIndex]) -> list[Hit]:
    """Every confirmed hit of every index in a batch of (doc_id, text)."""
    hits: list[Hit] = []
    for doc_id, text in docs:
        tokens = words(text)
        if not tokens:
            continue
        wh = word_hashes(" ".join(tokens))
        grams: dict[int, np.ndarray] = {}
        for index in indexes:
            hits.extend(_scan_doc(doc_id, tokens, wh, index, grams))
    return hits


def _scan_doc(
    doc_id: str, tokens: list[str], wh: np.ndarray, index: TaskIndex, grams: dict[int, np.ndarray]
) -> list[Hit]:
    n = index.n
    hits: list[Hit] = []
    inputs_found: set[tuple[int, int]] = set()  # (item, offset)
    if n not in grams:
        grams[n] = ngram_hashes(wh, n)
    g = grams[n]
    for p in _member(index.keys, g).tolist():
        window = tuple(tokens[p : p + n])
        for item_idx, segment, pos in index.where[int(g[p])]:
            item = index.items[item_idx]
            seq = item.input_words if segment == 0 else item.label_words
            if seq[pos : pos + n] != window:
                continue  # a hash collision, not a match
            hits.append(Hit(index.task, item_idx, "ngram", doc_id, p, " ".join(window)))
            if segment == 0 and pos == 0 and tuple(tokens[p : p + len(seq)]) == seq:
                inputs_found.add((item_idx, p))
    for length, (keys, table) in index.short.items():
        if length not in grams:
            grams[length] = ngram_hashes(wh, length)
        gl = grams[length]
        for p in _member(keys, gl).tolist():
            for item_idx in table[int(gl[p])]:
                if tuple(tokens[p : p + length]) == index.items[item_idx].input_words:
                    inputs_found.add((item_idx, p))
    if inputs_found:
        padded = " " + " ".join(tokens) + " "
        for item_idx, p in sorted(inputs_found):
            item = index.items[item_idx]
            hits.append(Hit(index.task, item_idx, "input", doc_id, p, " ".join(item.input_words)))
            if _reveals_label(item, padded):
                hits.append(Hit(index.task, item_idx, "input_and_label", doc_id, p, " ".join(item.input_words)))
    return hits


def _reveals_label(item: Item, padded_doc: str) -> bool:
    """The document gives the answer: the gold label occurs in it, and (multiple choice)
    more often than any wrong choice, so a page that merely lists all options does not count."""
    if not item.label_words:
        return False
    count = padded_doc.count(f" {' '.join(item.label_words)} ")
    wrong = [padded_doc.count(f" {' '.join(w)} ") for w in item.wrong_labels if w]
    return count > max(wrong, default=0)


# -- the report -----------------------------------------------------------------------
@dataclass
class Overlap:
    doc_id: str
    word_offset: int
    ngram: str


@dataclass
class ItemContamination:
    id: str
    n_words: int
    dirty: bool = False
    ngram_hits: int = 0  # confirmed N-gram occurrences, all documents
    documents: int = 0  # distinct documents with an N-gram hit
    input_match_docs: list[str] = field(default_factory=list)
    input_and_label_match_docs: list[str] = field(default_factory=list)
    overlaps: list[Overlap] = field(default_factory=list)  # the first MAX_DETAILS_PER_ITEM


@dataclass
class TaskContamination:
    task: str
    n: int
    n_rule: str  # "fixed" or "auto (GPT-3 appendix C)"
    items: int
    item_text: str = ""  # which text of each item was matched (ItemText.describe)
    dirty: int = 0
    fraction_dirty: float = 0.0
    input_contaminated: int = 0
    input_and_label_contaminated: int = 0
    per_item: list[ItemContamination] = field(default_factory=list)

    def clean_ids(self) -> list[str]:
        return [i.id for i in self.per_item if not i.dirty]

    def dirty_ids(self) -> list[str]:
        return [i.id for i in self.per_item if i.dirty]


class Tally:
    """Merges batches of hits into per-item results, in stream order."""

    def __init__(self, indexes: list[TaskIndex], rules: dict[str, str], texts: dict[str, str] | None = None) -> None:
        self.tasks = {
            ix.task: TaskContamination(
                ix.task,
                ix.n,
                rules[ix.task],
                len(ix.items),
                (texts or {}).get(ix.task, ""),
                per_item=[ItemContamination(i.id, len(i.input_words) + len(i.label_words)) for i in ix.items],
            )
            for ix in indexes
        }
        self._docs_seen: dict[tuple[str, int], set[str]] = defaultdict(set)

    def add(self, hits: Iterable[Hit]) -> None:
        for hit in hits:
            result = self.tasks[hit.task].per_item[hit.item]
            result.dirty = True
            if hit.kind == "ngram":
                result.ngram_hits += 1
                seen = self._docs_seen[(hit.task, hit.item)]
                if hit.doc_id not in seen:
                    seen.add(hit.doc_id)
                    result.documents += 1
                if len(result.overlaps) < MAX_DETAILS_PER_ITEM:
                    result.overlaps.append(Overlap(hit.doc_id, hit.word_offset, hit.text))
            elif hit.kind == "input":
                if len(result.input_match_docs) < MAX_DETAILS_PER_ITEM and hit.doc_id not in result.input_match_docs:
                    result.input_match_docs.append(hit.doc_id)
            elif (
                len(result.input_and_label_match_docs) < MAX_DETAILS_PER_ITEM
                and hit.doc_id not in result.input_and_label_match_docs
            ):
                result.input_and_label_match_docs.append(hit.doc_id)

    def finish(self) -> dict[str, TaskContamination]:
        for t in self.tasks.values():
            t.dirty = sum(i.dirty for i in t.per_item)
            t.fraction_dirty = t.dirty / t.items if t.items else 0.0
            t.input_contaminated = sum(bool(i.input_match_docs) for i in t.per_item)
            t.input_and_label_contaminated = sum(bool(i.input_and_label_match_docs) for i in t.per_item)
        self._docs_seen.clear()
        return self.tasks


def report_dict(tasks: dict[str, TaskContamination], settings: dict[str, Any]) -> dict[str, Any]:
    return {
        "audit": "contamination",
        "settings": {**settings, "normalisation": Normalisation().as_dict()},
        "tasks": {name: asdict(t) for name, t in tasks.items()},
    }
