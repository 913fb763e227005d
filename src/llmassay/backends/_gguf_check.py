"""Is this file a whole GGUF model? Checked before llama.cpp sees it.

llama.cpp answers a corrupt or truncated file with a bare "failed to load model"; a user
with a half-finished download or an HTML error page saved as `.gguf` deserves to be told
which. This reads the GGUF header (magic, metadata, tensor table: the layout in
ggml/docs/gguf.md) without loading any weights, and compares the bytes the tensor table
needs with the file's size. Tensor sizes come from the `gguf` package's quantisation
table when it is installed (the [hf] extra); without it the check stops at the last
tensor's start offset.
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import BinaryIO

from llmassay.types import LlmassayError

MAGIC = b"GGUF"
DEFAULT_ALIGNMENT = 32
# metadata value type → struct format (fixed-size scalars); 8 = string, 9 = array
SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}
STRING, ARRAY = 8, 9


class _Truncated(Exception):
    """The header ended before a field it declares."""


def check_gguf(path: Path, name: str) -> None:
    """A one-line error naming what is wrong with `path`, or nothing when it is whole."""
    size = path.stat().st_size
    with path.open("rb") as handle:
        head = handle.read(4)
        if not head:
            raise LlmassayError(f"model '{name}': {path} is empty, not a GGUF file")
        if head != MAGIC:
            raise LlmassayError(f"model '{name}': {path} is not a GGUF file (it starts with {head!r}, "
                                f"not {MAGIC!r}; a download error page or another format?)")
        try:
            end = _needed_bytes(handle)
        except _Truncated:
            raise LlmassayError(f"model '{name}': {path} is a truncated GGUF file: its header ends early, "
                                f"at byte {size:,} (an interrupted download?)") from None
        except (ValueError, UnicodeDecodeError, struct.error) as exc:
            raise LlmassayError(f"model '{name}': {path} has a corrupt GGUF header ({exc})") from None
    if end > size:
        raise LlmassayError(f"model '{name}': {path} is a truncated GGUF file: its tensors need {end:,} bytes, "
                            f"the file has {size:,} ({end - size:,} missing; an interrupted download?)")


def _read(handle: BinaryIO, n: int) -> bytes:
    data = handle.read(n)
    if len(data) < n:
        raise _Truncated
    return data


def _unpack(handle: BinaryIO, fmt: str) -> int | float | bool:
    return struct.unpack(fmt, _read(handle, struct.calcsize(fmt)))[0]


def _string(handle: BinaryIO) -> bytes:
    return _read(handle, int(_unpack(handle, "<Q")))


def _value(handle: BinaryIO, kind: int) -> object:
    if kind in SCALARS:
        return _unpack(handle, SCALARS[kind])
    if kind == STRING:
        return _string(handle)
    if kind == ARRAY:
        item, count = int(_unpack(handle, "<I")), int(_unpack(handle, "<Q"))
        if item in SCALARS:  # skip without unpacking: a vocabulary holds 10^5 scores
            _read(handle, struct.calcsize(SCALARS[item]) * count)
        else:
            for _ in range(count):
                _value(handle, item)
        return None
    raise ValueError(f"unknown metadata value type {kind}")


def _needed_bytes(handle: BinaryIO) -> int:
    """The file size the header promises: the data section's start plus its last tensor's end."""
    version = int(_unpack(handle, "<I"))
    if version not in (2, 3):
        raise ValueError(f"GGUF version {version}, expected 2 or 3")
    n_tensors, n_kv = int(_unpack(handle, "<Q")), int(_unpack(handle, "<Q"))
    alignment = DEFAULT_ALIGNMENT
    for _ in range(n_kv):
        key = _string(handle)
        value = _value(handle, int(_unpack(handle, "<I")))
        if key == b"general.alignment" and isinstance(value, int) and value > 0:
            alignment = value
    end = 0
    sizes = _type_sizes()
    for _ in range(n_tensors):
        _string(handle)
        dims = [int(_unpack(handle, "<Q")) for _ in range(int(_unpack(handle, "<I")))]
        kind, offset = int(_unpack(handle, "<I")), int(_unpack(handle, "<Q"))
        end = max(end, offset + _tensor_bytes(dims, kind, sizes))
    data_start = -(-handle.tell() // alignment) * alignment
    return data_start + end


def _tensor_bytes(dims: list[int], kind: int, sizes: dict[int, tuple[int, int]]) -> int:
    """Bytes of one tensor (elements / block size × block bytes); 1 when the type is unknown."""
    if kind not in sizes:
        return 1
    block, block_bytes = sizes[kind]
    elements = 1
    for d in dims:
        elements *= d
    return elements // block * block_bytes


def _type_sizes() -> dict[int, tuple[int, int]]:
    try:
        from gguf.constants import GGML_QUANT_SIZES
    except ImportError:
        return {}
    return {int(k): (int(v[0]), int(v[1])) for k, v in GGML_QUANT_SIZES.items()}
