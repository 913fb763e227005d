"""When prompts go through the model's chat template, and which template that was: the one rule
every probe and the judge follow, asked here rather than of a backend module."""

from __future__ import annotations

from typing import Any

CHAT_TEMPLATE_SETTINGS = ("auto", "on", "off")


def wants_chat_template(setting: str, chat_model: bool, num_fewshot: int = 0) -> bool:
    """`on`/`off` as said; `auto`: a chat model on a zero-shot prompt. A few-shot block is a
    transcript for a base model to continue; put in one user turn it reads as a conversation
    about the examples (SmolLM2 on arith_sample, 3-shot: exact match falls from 0.10 raw to
    0.00 in a chat turn), so it stays raw."""
    if setting != "auto":
        return setting == "on"
    return chat_model and num_fewshot == 0


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
