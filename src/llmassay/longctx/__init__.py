"""Long-context measurement: haystacks in the model's tokens, needles at depths, the
length × depth grid and the effective context length (`--probe needle`), and passages
with the answer at each position (`--probe position`)."""

from llmassay.longctx.cost import Cost
from llmassay.longctx.distractors import kb_documents
from llmassay.longctx.grid import EffectiveLength, Window, context_window, effective_length
from llmassay.longctx.haystack import Filler, Placed, build_haystack, read_filler
from llmassay.longctx.needles import KINDS, Needle, found, make_needles

__all__ = [
    "KINDS",
    "Cost",
    "EffectiveLength",
    "Filler",
    "Needle",
    "Placed",
    "Window",
    "build_haystack",
    "context_window",
    "effective_length",
    "found",
    "kb_documents",
    "make_needles",
    "read_filler",
]
