"""How a long context and its question are put to the model: the context first, the
question last, so that every question about one context shares its whole prefill."""

from __future__ import annotations

from llmassay.types import GenerateRequest

STOP = ("\n\n", "\nQuestion:")
CHAT_MARGIN = 48  # tokens a chat template may add around the message (role markers, system prompt)


def prompt_text(instruction: str, context: str, question: str, chat: bool) -> str:
    if chat:
        return f"{instruction}\n\n{context}\n\nQuestion: {question}\nAnswer briefly."
    return f"{instruction}\n\n{context}\n\nQuestion: {question}\nAnswer:"


def request(instruction: str, context: str, question: str, chat: bool, max_tokens: int, seed: int,
            temperature: float) -> GenerateRequest:
    text = prompt_text(instruction, context, question, chat)
    if chat:
        return GenerateRequest(messages=(("user", text),), max_tokens=max_tokens, seed=seed, temperature=temperature)
    # Not "\n": a base model often starts its answer on a new line.
    return GenerateRequest(prompt=text, max_tokens=max_tokens, stop=STOP, seed=seed, temperature=temperature)


def overhead(max_tokens: int, chat: bool) -> int:
    """Tokens beside the prompt text that must fit in the window: the answer, one spare
    position (llama.cpp's rule), and a chat template's markers."""
    return max_tokens + 1 + (CHAT_MARGIN if chat else 0)
