"""Tokenizers by spec, for counting only: no model weights are loaded.

- `llamacpp/ALIAS|PATH.gguf`: the GGUF's own vocabulary through llama.cpp (`vocab_only`);
- `hf-gguf/ALIAS|PATH.gguf`: the same GGUF's vocabulary converted by transformers
  (`gguf_file=`), a check that two implementations count alike;
- `hf/DIR`: a local Hugging Face tokenizer directory (never downloaded);
- `tiktoken/ENCODING`: only when tiktoken and the encoding's file are already on disk
  (tiktoken downloads its BPE files on first use, which a run never does).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from llmassay.models import resolve_model_path
from llmassay.types import LlmassayError

KINDS = ("llamacpp", "hf-gguf", "hf", "tiktoken")


@dataclass
class Tokenizer:
    """A spec and its `encode(text) -> token ids` (no BOS/EOS, special tokens as text)."""

    spec: str
    encode: Callable[[str], list[int]]
    vocab_size: int


def load_tokenizer(spec: str) -> Tokenizer:
    kind, sep, name = spec.partition("/")
    if not sep or not name or kind not in KINDS:
        raise LlmassayError(f"--tokenizer {spec}: expected KIND/NAME with KIND one of {', '.join(KINDS)}")
    return {"llamacpp": _llamacpp, "hf-gguf": _hf_gguf, "hf": _hf, "tiktoken": _tiktoken}[kind](spec, name)


def _llamacpp(spec: str, name: str) -> Tokenizer:
    from llmassay.backends import llama_internals

    llm = llama_internals.load_vocab(str(resolve_model_path(name)))
    return Tokenizer(spec, lambda text: llm.tokenize(text.encode("utf-8"), add_bos=False, special=False), llm.n_vocab())


def _hf_gguf(spec: str, name: str) -> Tokenizer:
    from transformers import AutoTokenizer

    path = resolve_model_path(name)
    try:
        tok = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name, local_files_only=True)
    except Exception as exc:  # transformers raises many kinds for an unsupported GGUF
        raise LlmassayError(f"--tokenizer {spec}: transformers cannot read this GGUF's vocabulary ({exc})") from exc
    return Tokenizer(spec, lambda text: tok.encode(text, add_special_tokens=False), len(tok))


def _hf(spec: str, name: str) -> Tokenizer:
    from transformers import AutoTokenizer

    if not Path(name).is_dir():
        raise LlmassayError(f"--tokenizer {spec}: no such directory (hf/ tokenizers are read from disk, never downloaded)")
    try:
        tok = AutoTokenizer.from_pretrained(name, local_files_only=True)
    except Exception as exc:
        raise LlmassayError(f"--tokenizer {spec}: cannot load a tokenizer from {name} ({exc})") from exc
    return Tokenizer(spec, lambda text: tok.encode(text, add_special_tokens=False), len(tok))


def _tiktoken(spec: str, name: str) -> Tokenizer:
    try:
        import tiktoken
        import tiktoken.load
    except ImportError as exc:
        raise LlmassayError(f"--tokenizer {spec}: tiktoken is not installed") from exc
    if not os.environ.get("TIKTOKEN_CACHE_DIR") and not os.environ.get("DATA_GYM_CACHE_DIR"):
        raise LlmassayError(
            f"--tokenizer {spec}: tiktoken would download its encoding; set TIKTOKEN_CACHE_DIR to a directory "
            "that already holds it"
        )
    try:
        enc = tiktoken.get_encoding(name)
    except Exception as exc:
        raise LlmassayError(f"--tokenizer {spec}: encoding not available offline ({exc})") from exc
    return Tokenizer(spec, lambda text: enc.encode(text, disallowed_special=()), enc.n_vocab)
