"""Is this model a chat (instruction-tuned) model? Decides `chat_template=auto`.

An instruct model asked "…\\nAnswer:" as raw text often ends its turn instead of
answering; lm-eval's `--apply_chat_template` exists for that. A model counts as a chat
model when it ships a chat template *and* its name or GGUF metadata says it was tuned
for instructions ("instruct", "chat", "-it"): base models often ship a template too.
An OpenAI-compatible endpoint does not say what it serves, so `auto` leaves it on the
completions route (as before); `-P accuracy.chat_template=on` sends chat requests. A
backend may answer for itself with a `chat_model()` method.
"""

from __future__ import annotations

import re
from typing import Any

INSTRUCT_NAME = re.compile(r"instruct|chat|(?:^|[-_.\s])it(?:$|[-_.\s])", re.IGNORECASE)
NAME_KEYS = ("general.name", "general.finetune", "general.basename", "general.type")


def is_chat_model(backend: Any, spec: str, model_args: dict[str, Any] | None = None) -> bool:
    """Whether free generation should go through the chat template for `chat_template=auto`."""
    own = getattr(backend, "chat_model", None)
    if callable(own):
        return bool(own())
    kind, _, name = spec.partition("/")
    llm = getattr(backend, "llm", None)
    if llm is not None and isinstance(getattr(llm, "metadata", None), dict):
        return _gguf_says_chat(llm.metadata, getattr(backend, "model_path", name))
    tokenizer = getattr(backend, "tokenizer", None)
    if tokenizer is not None:
        return bool(getattr(tokenizer, "chat_template", None)) and _instruct(str(getattr(backend, "path", name)))
    if type(backend).__module__.startswith("llmassay.engine.executors") and kind == "llamacpp":
        return _gguf_file_says_chat(name)  # Ray: the driver reads the file's metadata only
    return False


def _instruct(*names: Any) -> bool:
    return any(INSTRUCT_NAME.search(str(n)) for n in names if n)


def _gguf_says_chat(metadata: dict[str, Any], path: Any) -> bool:
    if not metadata.get("tokenizer.chat_template"):
        return False
    return _instruct(path, *(metadata.get(k) for k in NAME_KEYS))


def _gguf_file_says_chat(name: str) -> bool:
    """Read a GGUF's metadata without its weights (vocab_only), for a driver holding none."""
    from llmassay.backends import llama_internals
    from llmassay.models import resolve_model_path

    path = resolve_model_path(name)
    llm = llama_internals.load_vocab(str(path))
    try:
        return _gguf_says_chat(dict(llm.metadata), path)
    finally:
        llm.close()
