"""Distractor documents for the position probe.

Two sources, because they test different things: `task` shows the task's other items
(same template, same kind of fact: the hardest distractors, Liu et al.'s set-up), `kb`
shows documents about real countries built from the factuality knowledge base (a topic the
question is not about, so the model must only ignore them). KB distractors are drawn per
item from a generator seeded by the run's seed and the item's id, so a run is reproducible
and two seeds give two draws; a document that contains the item's answer is never drawn.
"""

from __future__ import annotations

import functools
import random
from collections.abc import Sequence
from dataclasses import dataclass

from llmassay.longctx.needles import found
from llmassay.types import LlmassayError

SOURCES = ("task", "kb")
# A village document is 45-50 words; these six sentences make a country document of about
# the same size (neighbour lists run to 14 names, so they are left out).
KB_FIELDS = ("capital", "continent", "currencies", "languages", "population", "area_km2")


@dataclass(frozen=True)
class Document:
    id: str  # the task item's id, or the country's ISO code
    text: str


@functools.lru_cache(maxsize=1)
def kb_documents() -> tuple[Document, ...]:
    """One document per country of the bundled KB that has every field of KB_FIELDS, in ISO order."""
    from llmassay.factuality.kb import Country, bundled_kb, passage_text

    kb = bundled_kb()  # a clear error when the [facts] extra is missing
    out = []
    for code, c in sorted(kb.countries.items()):
        # One source's value per field: a distractor need not say where the sources disagree.
        single = Country(c.code, c.name, c.aliases, {f: {"kb": c.first(f)} for f in KB_FIELDS if c.first(f) is not None})
        sentences = [passage_text(single, name) for name in KB_FIELDS]
        if all(sentences):
            out.append(Document(code, " ".join(sentences)))
    return tuple(out)


def task_distractors(passages: Sequence[Document], index: int, k: int) -> list[Document]:
    """The k items after `index` in task order (wrapping): the same for every seed."""
    if len(passages) <= k:
        raise LlmassayError(f"-P position.passages={k + 1}: the task has only {len(passages)} items to draw distractors from")
    return [passages[(index + j) % len(passages)] for j in range(1, k + 1)]


def kb_distractors(pool: Sequence[Document], item_id: str, answer: str, k: int, seed: int) -> list[Document]:
    """k documents drawn without replacement from `pool`, none of which contains `answer`."""
    allowed = [d for d in pool if not found(d.text, answer)]
    if len(allowed) < k:
        raise LlmassayError(f"-P position.passages={k + 1}: the KB has only {len(allowed)} documents "
                            f"without the answer of item {item_id}")
    return random.Random(f"position/{seed}/{item_id}").sample(allowed, k)
