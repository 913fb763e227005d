"""What constrained decoding enforces of a JSON schema, for every backend alike: the probes ask
here, and the grammar compiler (`backends._gbnf`, which needs llama.cpp's converter) loads only
when a constrained request is planned."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from llmassay.backends._gbnf import CompiledSchema


@functools.lru_cache(maxsize=256)
def compile_schema(schema_json: str) -> CompiledSchema:
    """The schema's grammar and the keywords it relaxes (`CompiledSchema`); LlmassayError when the
    schema cannot be enforced."""
    from llmassay.backends._gbnf import compile_schema as compile_to_grammar

    return compile_to_grammar(schema_json)
