"""`chat_template=auto`: which models count as chat models."""

from __future__ import annotations

import pytest

from llmassay.backends.chat import _gguf_file_says_chat, _gguf_says_chat, is_chat_model

TEMPLATE = {"tokenizer.chat_template": "{% for m in messages %}{{ m.content }}{% endfor %}"}


@pytest.mark.parametrize("metadata, path, chat", [
    (TEMPLATE, "SmolLM2-135M-Instruct.Q4_1.gguf", True),
    ({**TEMPLATE, "general.finetune": "it"}, "gemma.gguf", True),
    ({**TEMPLATE, "general.name": "Llama 3 8B Chat"}, "m.gguf", True),
    (TEMPLATE, "gemma-3-270m.gguf", False),  # a base model that ships a template anyway
    ({"general.name": "Qwen2.5 Instruct"}, "q.gguf", False),  # no template to apply
    (TEMPLATE, "digital-twin.gguf", False),  # "it" only as a word of its own
])
def test_a_chat_model_has_a_template_and_says_it_is_tuned(metadata, path, chat):
    assert _gguf_says_chat(metadata, path) is chat


def test_a_backend_can_answer_for_itself_and_unknown_backends_are_not_chat():
    class Own:
        def chat_model(self):
            return True

    assert is_chat_model(Own(), "test/x") is True
    assert is_chat_model(object(), "test/x") is False
    assert is_chat_model(object(), "openai/gpt") is False  # an endpoint does not say: completions, as before


@pytest.mark.slow
def test_bundled_models(smollm2):
    assert is_chat_model(smollm2, "llamacpp/smollm2-135m") is True
    assert _gguf_file_says_chat("smollm2-135m") is True  # what a Ray driver reads without the weights
    assert _gguf_file_says_chat("gemma3-270m") is False  # base model, no template in its GGUF
