"""A log-likelihood judge's prompt through the judge model's chat template, as text.

An instruct model reads a bare prompt as a document to continue; in its own template it
reads a request and answers it. Generated verdicts get the template from the backend
(chat requests); a log-likelihood request is text, so the template is rendered here,
with the model's own tokenizer, and the verdict letter scored after the assistant's
opening "[[". Only backends whose log-likelihood path reads the template's control
tokens as control tokens can do this: HF (its tokenizer parses them in text) and any
backend with a `chat_prompt(text)` method. llama.cpp scores text with `special=False`
(task text must never become control tokens), so its template markers would be read as
plain characters: there it stays raw, and the judgement records why.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Renderer = Callable[[str], str]
NO_LLAMACPP = ("llama.cpp scores log-likelihoods of plain text (special=False), so the template's control tokens "
               "would be read as characters")


def chat_renderer(backend: Any) -> tuple[Renderer | None, str]:
    """(one user turn → its templated text ending at the assistant's turn, what rendered it),
    or (None, why not)."""
    own = getattr(backend, "chat_prompt", None)
    if callable(own):
        return own, f"{type(backend).__name__}.chat_prompt"
    tokenizer = getattr(backend, "tokenizer", None)
    if tokenizer is not None and getattr(tokenizer, "chat_template", None):
        def render(text: str) -> str:
            return str(tokenizer.apply_chat_template([{"role": "user", "content": text}], tokenize=False,
                                                     add_generation_prompt=True))

        return render, "the HF tokenizer's chat_template"
    if getattr(backend, "llm", None) is not None:
        return None, NO_LLAMACPP
    return None, "the backend renders no chat template as text"
