"""Tokenizers without weights: a detector needs only the ids a text tokenizes to."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from llmassay.types import LlmassayError


@dataclass(frozen=True)
class Tokenizer:
    encode: Callable[[str], list[int]]  # text → ids, no BOS or other special tokens
    n_vocab: int
    name: str


def load_tokenizer(spec: str) -> Tokenizer:
    """`llamacpp/<alias or .gguf>` (the GGUF's vocabulary only: `Llama(vocab_only=True)`)
    or `hf/<local dir>` (AutoTokenizer); nothing is fetched from a hub."""
    kind, _, name = spec.partition("/")
    if kind == "llamacpp" and name:
        from llmassay.backends import llama_internals
        from llmassay.backends.llamacpp import _captured_stderr
        from llmassay.models import resolve_model_path

        path = resolve_model_path(name)
        try:
            with _captured_stderr():  # llama.cpp logs a context warning even for a vocabulary
                llm = llama_internals.load_vocab(str(path))
        except ValueError as exc:
            raise LlmassayError(f"--tokenizer '{spec}': cannot load the vocabulary ({exc})") from None
        return Tokenizer(
            lambda text: llm.tokenize(text.encode("utf-8"), add_bos=False, special=False), llm.n_vocab(), spec
        )
    if kind == "hf" and name:
        try:
            from transformers import AutoTokenizer
        except ImportError:
            raise LlmassayError("--tokenizer hf/…: needs the [hf] extra (transformers)") from None
        try:
            tok = AutoTokenizer.from_pretrained(name, local_files_only=True)
        except (OSError, ValueError) as exc:
            raise LlmassayError(f"--tokenizer '{spec}': cannot load ({str(exc).splitlines()[0]})") from None
        return Tokenizer(lambda text: list(tok.encode(text, add_special_tokens=False)), len(tok), spec)
    raise LlmassayError(f"--tokenizer '{spec}': expected llamacpp/<model> or hf/<local dir>")
