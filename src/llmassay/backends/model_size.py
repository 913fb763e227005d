"""What size and kind of model a backend runs: parameters, architecture, quantisation.

A models × metrics matrix (`llmassay assess --model A --model B`) fits each metric against
log(parameters) and must say when the "size" axis mixes families or quantisations, so
each backend reports `model_size()` (an optional hook, see base.py) as a `ModelSize`.
For a GGUF file the facts are read from its header (the `general.*` metadata and the
tensor table: the parameter count is the sum of the tensors' elements), without loading
any weights; for a transformers model from its config and its parameters.
"""

from __future__ import annotations

import struct
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from llmassay.backends._gguf_check import _string, _Truncated, _unpack, _value
from llmassay.types import LlmassayError

# llama.cpp's llama_ftype values (include/llama.h) for when neither `gguf` nor llama.cpp names them
_FTYPES = {0: "f32", 1: "f16", 2: "q4_0", 3: "q4_1", 7: "q8_0", 8: "q5_0", 9: "q5_1", 10: "q2_k", 11: "q3_k_s",
           12: "q3_k_m", 13: "q3_k_l", 14: "q4_k_s", 15: "q4_k_m", 16: "q5_k_s", 17: "q5_k_m", 18: "q6_k",
           32: "bf16"}


@dataclass(frozen=True)
class ModelSize:
    """One model's size facts; a field the source does not give is None."""

    parameters: int | None
    architecture: str | None  # the family: llama, gemma3, qwen2, … (GGUF general.architecture, hf model_type)
    quantisation: str | None  # q4_k_m, q8_0, f16, bf16, float32, …
    name: str | None = None  # the model's own name (general.name, the hf name_or_path)
    source: str = ""  # where the facts were read

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, value: Any) -> ModelSize | None:
        """Read back from a results file; None when absent or not an object."""
        if not isinstance(value, dict):
            return None
        params = value.get("parameters")
        text = {k: (str(value[k]) if value.get(k) is not None else None) for k in ("architecture", "quantisation", "name")}
        return cls(int(params) if isinstance(params, (int, float)) and params > 0 else None,
                   text["architecture"], text["quantisation"], text["name"], str(value.get("source") or ""))


_WANTED = {b"general.architecture", b"general.name", b"general.file_type"}


def gguf_size(path: Path) -> ModelSize:
    """Parameters (sum of tensor elements), architecture and file type from a GGUF header."""
    meta: dict[bytes, object] = {}
    parameters = 0
    try:
        with path.open("rb") as handle:
            if handle.read(4) != b"GGUF":
                raise ValueError("not a GGUF file")
            _unpack(handle, "<I")
            n_tensors, n_kv = int(_unpack(handle, "<Q")), int(_unpack(handle, "<Q"))
            for _ in range(n_kv):
                key = _string(handle)
                value = _value(handle, int(_unpack(handle, "<I")))
                if key in _WANTED:
                    meta[key] = value
            for _ in range(n_tensors):
                _string(handle)
                elements = 1
                for _ in range(int(_unpack(handle, "<I"))):
                    elements *= int(_unpack(handle, "<Q"))
                _unpack(handle, "<I"), _unpack(handle, "<Q")
                parameters += elements
    except (OSError, ValueError, UnicodeDecodeError, struct.error, _Truncated) as exc:
        raise LlmassayError(f"{path}: cannot read the GGUF header for the model's size ({exc})") from None

    def text(key: bytes) -> str | None:
        value = meta.get(key)
        return value.decode("utf-8", "replace") if isinstance(value, bytes) else None

    ftype = meta.get(b"general.file_type")
    return ModelSize(parameters or None, text(b"general.architecture"),
                     ftype_name(ftype) if isinstance(ftype, int) else None, text(b"general.name"),
                     f"GGUF header of {path.name}")


def ftype_name(value: int) -> str:
    """A llama_ftype number as its lower-case name (q4_k_m), from `gguf` when installed."""
    try:
        from gguf.constants import LlamaFileType

        return LlamaFileType(value).name.removeprefix("MOSTLY_").lower()
    except (ImportError, ValueError):
        return _FTYPES.get(value, f"file_type {value}")


def torch_size(model: Any) -> ModelSize:
    """A transformers model: its config's model_type, the sum of its parameters, its dtype
    (or the quantisation method its config names)."""
    config = getattr(model, "config", None)
    quant = getattr(config, "quantization_config", None)
    method = quant.get("quant_method") if isinstance(quant, dict) else getattr(quant, "quant_method", None)
    dtype = getattr(model, "dtype", None)
    return ModelSize(
        int(sum(p.numel() for p in model.parameters())),
        getattr(config, "model_type", None),
        str(method) if method else (str(dtype).removeprefix("torch.") if dtype is not None else None),
        getattr(config, "name_or_path", None) or None,
        "transformers config and parameters",
    )
