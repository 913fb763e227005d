"""What constrained decoding enforces of a JSON schema, for every backend alike: the probes ask
here. The answer is pure Python (`backends._gbnf.enforced_schema`): a backend other than
llama.cpp needs no llama-cpp-python to run the structured probe's constrained mode."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from llmassay.backends._schema_subset import Subset


@functools.lru_cache(maxsize=256)
def enforced_schema(schema_json: str) -> Subset:
    """The part of the schema a grammar enforces exactly and the keywords it relaxes; a one-line
    LlmassayError when it is not a usable schema."""
    from llmassay.backends._gbnf import enforced_schema as enforced

    return enforced(schema_json)
