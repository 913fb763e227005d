"""A GGUF's vocabulary and embedding rows, read with the `gguf` package.

Rows are de-quantised a chunk at a time (`gguf.quants.dequantize`), so Gemma's 262k × 640
matrix never sits in memory as float32 all at once (≈ 0.7 GB); callers stream over chunks.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from llmassay.types import LlmassayError

CONTROL, UNUSED, BYTE = 3, 5, 6  # gguf.TokenType values
# Bytes that never occur in valid UTF-8: a tokenizer fed text can never produce them.
INVALID_UTF8 = (0xC0, 0xC1, *range(0xF5, 0x100))
_UNUSED_NAME = re.compile(r"^<unused\d+>$|^\[unused\d+\]$")
CHUNK_ROWS = 8192


@dataclass
class GGUFVocab:
    path: Path
    tokens: list[str]
    types: list[int]
    model: str  # tokenizer.ggml.model: "gpt2" (byte-level BPE), "llama" (SentencePiece), …
    embedding: Any  # gguf ReaderTensor: token_embd.weight (gguf is an optional extra)
    output: Any | None  # output.weight, None when tied to the embedding

    @property
    def tied(self) -> bool:
        return self.output is None

    @property
    def n_vocab(self) -> int:
        return len(self.tokens)

    def rows(self, tensor: Any, chunk: int = CHUNK_ROWS) -> Iterator[tuple[int, np.ndarray]]:
        """(first row, float32 rows) chunk by chunk."""
        from gguf.quants import dequantize

        data = tensor.data  # memory-mapped, one quantised row per token
        for start in range(0, len(data), chunk):
            yield start, np.asarray(dequantize(data[start:start + chunk], tensor.tensor_type), dtype=np.float32)

    def unused_tokens(self) -> list[int]:
        """Tokens declared unused: type UNUSED, or named `<unusedN>` (Gemma)."""
        return [i for i, (t, k) in enumerate(zip(self.tokens, self.types)) if k == UNUSED or _UNUSED_NAME.match(t)]

    def byte_token(self, value: int) -> int | None:
        """The token that stands for one raw byte, in this vocabulary's spelling."""
        if self.model == "gpt2":
            from gguf.vocab import bytes_to_unicode

            spelling = bytes_to_unicode()[value]
        else:
            spelling = f"<0x{value:02X}>"
        return self._index().get(spelling)

    def invalid_utf8_tokens(self) -> list[int]:
        return [t for t in (self.byte_token(b) for b in INVALID_UTF8) if t is not None]

    def display(self, token_id: int) -> str:
        """The token's text as a user reads it (byte-level BPE spelling decoded)."""
        text = self.tokens[token_id]
        if self.model == "gpt2":
            from gguf.vocab import bytes_to_unicode

            back = {c: b for b, c in bytes_to_unicode().items()}
            if all(c in back for c in text):
                return repr(bytes(back[c] for c in text).decode("utf-8", errors="backslashreplace"))
        return repr(text)

    def _index(self) -> dict[str, int]:
        if not hasattr(self, "_by_text"):
            self._by_text = {t: i for i, t in enumerate(self.tokens)}
        return self._by_text


def read_vocab(path: str | Path) -> GGUFVocab:
    from gguf import GGUFReader

    path = Path(path)
    try:
        reader = GGUFReader(str(path))
    except Exception as exc:  # gguf raises ValueError/struct errors on a bad file
        raise LlmassayError(f"{path}: not a readable GGUF file ({exc})") from exc
    fields = reader.fields
    for key in ("tokenizer.ggml.tokens", "tokenizer.ggml.token_type"):
        if key not in fields:
            raise LlmassayError(f"{path}: no '{key}' field; cannot read its vocabulary")
    tensors = {t.name: t for t in reader.tensors}
    if "token_embd.weight" not in tensors:
        raise LlmassayError(f"{path}: no token_embd.weight tensor")
    model = fields["tokenizer.ggml.model"].contents() if "tokenizer.ggml.model" in fields else "unknown"
    return GGUFVocab(
        path, list(fields["tokenizer.ggml.tokens"].contents()), [int(x) for x in fields["tokenizer.ggml.token_type"].contents()],
        model, tensors["token_embd.weight"], tensors.get("output.weight"),
    )
