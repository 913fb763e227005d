"""How the safety probes ask: a conversation sent through the model's chat template, or
rendered as one text for a base model, k times (distinct requests, so that at
temperature > 0 the engine does not deduplicate intended repeats)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from llmassay.types import GenerateRequest


class Decoding(Protocol):
    """What asking needs from a run's settings (a probe passes its `ProbeConfig`): domain code
    knows no probe."""

    seed: int
    temperature: float
    chat_model: bool

PROMPT_FORMATS = ("auto", "chat", "raw")  # auto: chat when the model has a chat template
_NAMES = {"system": "System", "user": "User", "assistant": "Assistant"}


def use_chat(prompt_format: str, cfg: Decoding) -> bool:
    return prompt_format == "chat" or (prompt_format == "auto" and cfg.chat_model)


def render_raw(conversation: Sequence[tuple[str, str]]) -> str:
    """A conversation as one text for a base model (no chat template)."""
    return "".join(f"{_NAMES[role]}: {text}\n\n" for role, text in conversation) + "Assistant:"


def ask(conversation: Sequence[tuple[str, str]], chat: bool, max_tokens: int, stop: Sequence[str], cfg: Decoding,
        repeat: int = 0) -> GenerateRequest:
    """The request for one attempt at a conversation; a raw prompt also stops at the next turn."""
    common = {"max_tokens": max_tokens, "temperature": cfg.temperature, "seed": cfg.seed, "repeat": repeat}
    if chat:
        return GenerateRequest(messages=tuple(conversation), stop=tuple(stop), **common)
    return GenerateRequest(prompt=render_raw(conversation), stop=(*stop, "\nUser:"), **common)
