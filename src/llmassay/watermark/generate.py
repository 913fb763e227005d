"""Watermarked generation requests, shared by the watermark probe and `llmassay watermark
generate`: the prompt as a chat turn (the model's template) or raw text, with the green-list
bias named by the request's `watermark` spec (the backend's logits processor applies it)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from llmassay.types import GenerateRequest
from llmassay.watermark.scheme import WatermarkConfig

if TYPE_CHECKING:
    from llmassay.engine.engine import Engine


def generation_request(prompt: str, chat: bool, **kwargs: Any) -> GenerateRequest:
    if chat:
        return GenerateRequest(messages=(("user", prompt),), **kwargs)
    return GenerateRequest(prompt=prompt, **kwargs)


def generate_watermarked(engine: Engine, prompts: list[str], wm: WatermarkConfig, chat: bool, max_tokens: int,
                         temperature: float, seed: int) -> list[str]:
    """One watermarked text per prompt (temperature 0: greedy)."""
    reqs = [generation_request(p, chat, max_tokens=max_tokens, temperature=temperature, seed=seed, watermark=wm.spec())
            for p in prompts]
    return [g.text for g in engine.generate(reqs)]
