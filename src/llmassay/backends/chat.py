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

CHAT_TEMPLATE_SETTINGS = ("auto", "on", "off")
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


def wants_chat_template(setting: str, chat_model: bool, num_fewshot: int = 0) -> bool:
    """`on`/`off` as said; `auto`: a chat model on a zero-shot prompt. A few-shot block is a
    transcript for a base model to continue; put in one user turn it reads as a conversation
    about the examples (SmolLM2 on arith_sample, 3-shot: exact match falls from 0.10 raw to
    0.00 in a chat turn), so it stays raw."""
    if setting != "auto":
        return setting == "on"
    return chat_model and num_fewshot == 0


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


def chat_template_id(backend: Any) -> str | None:
    """Which chat template a backend applies, as a short hash of its Jinja text (two runs
    used the same template iff the hashes agree); None when the backend does not say."""
    import hashlib

    llm = getattr(backend, "llm", None)
    metadata = getattr(llm, "metadata", None)
    text = metadata.get("tokenizer.chat_template") if isinstance(metadata, dict) else None
    text = text or getattr(getattr(backend, "tokenizer", None), "chat_template", None)
    if not isinstance(text, str) or not text:
        return None
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()[:12]
