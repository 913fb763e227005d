"""The leakage guard: before training, the contamination audit (`llmassay.audit`) runs between
the training texts and every evaluation task the recipe names; an overlap stops the run."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from llmassay.types import LlmassayError


@dataclass
class GuardResult:
    tasks: tuple[str, ...]
    ngram: dict[str, int]
    # task → evaluation item id → training ids that share an N-gram (or the whole input) with it
    overlaps: dict[str, dict[str, list[str]]] = field(default_factory=dict)
    allowed: bool = False  # --allow-overlap: trained anyway, and the card says so

    @property
    def clean(self) -> bool:
        return not any(self.overlaps.values())

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "tasks": list(self.tasks), "clean": self.clean}


def leakage_guard(texts: Path, tasks: tuple[str, ...], allow_overlap: bool = False) -> GuardResult:
    """Audit the training texts (`data.write_texts`) against `tasks`; raise, naming the
    overlapping item and training ids, unless `allow_overlap`."""
    from llmassay.audit import CorpusSpec, audit_contamination

    if not tasks:
        return GuardResult((), {}, {}, allow_overlap)
    audit = audit_contamination(CorpusSpec((str(texts),), text_field="text", id_field="id"), list(tasks), ngram="auto")
    overlaps: dict[str, dict[str, list[str]]] = {}
    for name, task in audit.tasks.items():
        dirty = {i.id: sorted({o.doc_id for o in i.overlaps} | set(i.input_match_docs)) for i in task.per_item if i.dirty}
        if dirty:
            overlaps[name] = dirty
    result = GuardResult(tuple(tasks), dict(audit.settings["ngram"]), overlaps, allow_overlap)
    if not result.clean and not allow_overlap:
        listed = "; ".join(f"{task} {item} (training {', '.join(ids[:3])}{' ...' if len(ids) > 3 else ''})"
                           for task, items in overlaps.items() for item, ids in list(items.items())[:5])
        count = sum(len(v) for v in overlaps.values())
        raise LlmassayError(f"leakage guard: the training data overlaps {count} evaluation item(s): {listed}; "
                            "remove them or pass --allow-overlap (recorded in the run card)")
    return result
