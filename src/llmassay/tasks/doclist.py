"""The few `datasets.Dataset` methods lm-eval's `process_docs` functions call.

A task's `process_docs` receives a Hugging Face `Dataset` in lm-eval. Installing
`datasets` (pyarrow, pandas) to hand a few hundred local records to one function is not
worth it, so this list answers `map`, `filter`, `select`, `rename_column`,
`remove_columns` and `column_names` with `datasets`' semantics: `map` merges the returned
fields into each record.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any


class DocList(list):
    """A list of documents (dicts) that behaves like a small `datasets.Dataset`."""

    def __init__(self, docs: Iterable[dict[str, Any]] = ()) -> None:
        super().__init__(dict(d) for d in docs)

    @property
    def column_names(self) -> list[str]:
        return list(self[0]) if self else []

    @property
    def features(self) -> dict[str, None]:
        return dict.fromkeys(self.column_names)

    def map(
        self, function: Callable[..., Any] | None = None, with_indices: bool = False, batched: bool = False,
        batch_size: int | None = 1000, remove_columns: str | list[str] | None = None, **_: Any,
    ) -> DocList:
        drop = [remove_columns] if isinstance(remove_columns, str) else list(remove_columns or ())
        if function is None:
            return DocList({k: v for k, v in d.items() if k not in drop} for d in self)
        if batched:
            return self._map_batched(function, with_indices, batch_size or len(self) or 1, drop)
        out = []
        for i, doc in enumerate(self):
            update = function(doc, i) if with_indices else function(doc)
            merged = {k: v for k, v in doc.items() if k not in drop}
            merged.update(update or {})
            out.append(merged)
        return DocList(out)

    def _map_batched(self, function: Callable[..., Any], with_indices: bool, size: int, drop: list[str]) -> DocList:
        out: list[dict[str, Any]] = []
        for start in range(0, len(self), size):
            chunk = self[start: start + size]
            columns = {k: [d[k] for d in chunk] for k in (chunk[0] if chunk else {})}
            indices = list(range(start, start + len(chunk)))
            result = function(columns, indices) if with_indices else function(columns)
            kept = {k: v for k, v in columns.items() if k not in drop}
            kept.update(result or {})
            n = len(next(iter(kept.values()))) if kept else 0
            out.extend({k: v[i] for k, v in kept.items()} for i in range(n))
        return DocList(out)

    def filter(self, function: Callable[..., bool], with_indices: bool = False, **_: Any) -> DocList:
        return DocList(d for i, d in enumerate(self) if (function(d, i) if with_indices else function(d)))

    def select(self, indices: Iterable[int]) -> DocList:
        return DocList(self[i] for i in indices)

    def rename_column(self, old: str, new: str) -> DocList:
        return DocList({(new if k == old else k): v for k, v in d.items()} for d in self)

    def remove_columns(self, columns: str | list[str]) -> DocList:
        return self.map(None, remove_columns=columns)

    def to_list(self) -> list[dict[str, Any]]:
        return [dict(d) for d in self]
