"""The other remedy for a stale fact, measured on the same edits: leave the weights alone and
put the fact beside them. The country KB is edited the way the weights were (each edit's
`<ISO code>.<field>` set to its new object, `factuality.edit.set_facts`), the unedited model
reads the passages retrieved from it (`factuality.retrieval`, as the factuality probe's
`rag` modes do) before every prompt, and the same CounterFact scores are read
(`editing.scores`): efficacy is P(new) > P(old) with the retrieved passage prepended.

Retrieval is per prompt: the edit prompt, each paraphrase and each neighbourhood prompt is its
own query, so a neighbour prompt may retrieve the edited passage (and be swayed by it) just as
a weight edit may leak into it.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from llmassay.editing.edits import Edit, Neighbour
from llmassay.editing.scores import score_edits
from llmassay.types import LlmassayError, LoglikelihoodRequest, LoglikelihoodResult

if TYPE_CHECKING:
    from llmassay.factuality.kb import KnowledgeBase
    from llmassay.factuality.retrieval import Index

KINDS = ("bm25", "dense")
_FACT = re.compile(r"^([A-Z]{2})\.([a-z_0-9]+)$")


def kb_changes(facts: Sequence[tuple[str, Edit]], kb: KnowledgeBase) -> dict[str, str]:
    """"<code>.<field>" → the new object, for each (fact key, edit); one line naming the edit
    whose key is not a fact of the KB (country_edits' ids are: "PE.capital")."""
    from llmassay.factuality.kb import FIELDS

    out = {}
    for key, edit in facts:
        match = _FACT.match(key)
        if not match or match.group(1) not in kb.countries or match.group(2) not in FIELDS:
            raise LlmassayError(f"edit '{key}': retrieval needs the edit's id to name a KB fact, "
                                f"<ISO code>.<field> with a field among {', '.join(FIELDS)} (as country_edits' do)")
        out[key] = edit.new.strip()
    return out


def edited_index(facts: Sequence[tuple[str, Edit]], kind: str = "bm25", kb: KnowledgeBase | None = None) -> Index:
    """An index over the KB (the bundled one by default) with every edit's fact changed."""
    from llmassay.factuality.edit import set_facts
    from llmassay.factuality.kb import bundled_kb
    from llmassay.factuality.retrieval import Index

    if kind not in KINDS:
        raise LlmassayError(f"retrieval kind '{kind}' is not one of {', '.join(KINDS)}")
    kb = kb if kb is not None else bundled_kb()
    return Index(set_facts(kb, kb_changes(facts, kb)), kind)


def with_context(edit: Edit, retrieve: Callable[[str], str]) -> Edit:
    """The edit with `retrieve(prompt)` (the context text) before each of its prompts."""
    def fill(prompt: str) -> str:
        text = prompt.replace("{}", edit.subject)
        return retrieve(text) + text

    return dataclasses.replace(edit, prompt=fill(edit.prompt), paraphrases=tuple(fill(p) for p in edit.paraphrases),
                               neighbourhood=tuple(Neighbour(fill(n.prompt), n.true) for n in edit.neighbourhood))


def retriever(index: Index, k: int) -> Callable[[str], str]:
    from llmassay.factuality.retrieval import context_text

    return lambda prompt: context_text(index.kb, index.search(prompt, k))


def rag_rows(edits: Sequence[Edit], index: Index, k: int,
             loglikelihood: Callable[[list[LoglikelihoodRequest]], list[LoglikelihoodResult]]) -> list[dict[str, Any]]:
    """CounterFact rows of the model as loaded, reading the top-k passages of `index` before
    each prompt; each row also names the passages retrieved for the edit prompt."""
    search = retriever(index, k)
    rows = score_edits([with_context(e, search) for e in edits], loglikelihood)
    for row, edit in zip(rows, edits):
        row["retrieved"] = index.search(edit.text, k)
    return rows


__all__ = ["KINDS", "edited_index", "kb_changes", "rag_rows", "retriever", "with_context"]
