"""A PEFT LoRA adapter in llama.cpp's GGUF LoRA format, so a tuned model is assessed at
llama.cpp speed (`llamacpp/<model> --model-args lora=DIR`).

What llama.cpp's `convert_lora_to_gguf.py` writes, for the architectures whose HF → GGUF
conversion is known here: `general.type = adapter`, `adapter.type = lora`,
`adapter.lora.alpha`, and per adapted weight `<gguf name>.lora_a` (PEFT's A, rank × in) and
`.lora_b` (PEFT's B, out × rank), names mapped with gguf-py's own tensor map. llama.cpp's
`llama` architecture stores q_proj/k_proj rows permuted (its rope pairs neighbouring rows,
HF's pairs the two halves), so the B of q_proj and k_proj is permuted the same way
(`permute_rows`); A multiplies the input and is never permuted. llama.cpp scales the product
by alpha / rank, PEFT by lora_alpha / r (rsLoRA: / sqrt(r)), so rsLoRA's alpha is rescaled.

Everything is checked before llama.cpp sees the file — the adapter's files and settings, the
base model's architecture, each tensor's name and shape against the base GGUF — because
llama.cpp answers a misfit with a bare "failed to initialize LoRA adapter". The converted
file is cached under $LLMASSAY_HOME/gguf-lora, named by the adapter's hash.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llmassay.hashing import file_sha256, stable_hash
from llmassay.home import llmassay_home
from llmassay.types import LlmassayError

CONVERTER_VERSION = 1  # bump when the written file changes: a new cache name and fingerprint
GGUF_LORA_FORMAT = f"llmassay-gguf-lora-{CONVERTER_VERSION}"  # in a tuned llamacpp model's fingerprint
CONFIG, WEIGHTS = "adapter_config.json", "adapter_model.safetensors"
# llama.cpp architectures whose HF → GGUF conversion this follows: do q/k rows get permuted?
ARCHITECTURES = {"llama": True}
# PEFT settings llama.cpp's adapter cannot express (a value other than the default is refused)
UNSUPPORTED = {"use_dora": False, "alpha_pattern": {}, "modules_to_save": None, "fan_in_fan_out": False,
               "bias": "none", "lora_bias": False, "trainable_token_indices": None}


@dataclass(frozen=True)
class GgufLora:
    """A converted adapter: the GGUF file, the PEFT adapter's hash, what it adapts."""

    path: Path
    adapter_sha256: str
    architecture: str
    alpha: float
    rank: int


@dataclass(frozen=True)
class BaseModel:
    """What the conversion needs from the base GGUF: no weights are read."""

    path: Path
    architecture: str
    n_head: int
    n_head_kv: int
    n_blocks: int
    shapes: dict[str, tuple[int, ...]]  # tensor name → GGUF dims (ne: the input dim first)


def adapter_folder(path: str | Path) -> Path:
    """The PEFT adapter folder of `path`: a `llmassay tune` output folder (its adapter/) or
    the adapter folder itself; a one-line error when the files are not there."""
    given = Path(path).expanduser()
    if not given.is_dir():
        raise LlmassayError(f"lora: '{path}' is not a folder (give a `llmassay tune` output folder or its adapter/)")
    folder = given / "adapter" if not (given / CONFIG).exists() and (given / "adapter").is_dir() else given
    missing = [name for name in (CONFIG, WEIGHTS) if not (folder / name).is_file()]
    if missing:
        raise LlmassayError(f"lora: {folder} has no {' and no '.join(missing)} (not a PEFT LoRA adapter folder; "
                            "`llmassay tune sft --output-path DIR` writes one in DIR/adapter)")
    return folder


def adapter_sha256(folder: Path) -> str:
    """The adapter's hash: its config and weight files (the hf backend's `adapter_sha256` too)."""
    files = sorted(p for p in folder.iterdir() if p.name == CONFIG or p.suffix in (".safetensors", ".bin"))
    return stable_hash({p.name: file_sha256(p) for p in files})


def read_adapter_config(folder: Path) -> dict[str, Any]:
    """adapter_config.json, checked for what llama.cpp's LoRA can carry."""
    path = folder / CONFIG
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise LlmassayError(f"lora: {path} is not readable JSON ({exc})") from None
    if not isinstance(config, dict):
        raise LlmassayError(f"lora: {path} is not a JSON object")
    if config.get("peft_type") != "LORA":
        raise LlmassayError(f"lora: {path}: peft_type is {config.get('peft_type')!r}; only LORA converts to GGUF")
    for key, default in UNSUPPORTED.items():
        if config.get(key, default) not in (default, None, {}, False):
            raise LlmassayError(f"lora: {path}: {key}={config[key]!r} has no llama.cpp equivalent "
                                "(only plain LoRA on linear layers converts)")
    for key in ("r", "lora_alpha"):
        if not isinstance(config.get(key), (int, float)) or config[key] <= 0:
            raise LlmassayError(f"lora: {path}: field '{key}' must be a positive number")
    if config.get("use_rslora") and config.get("rank_pattern"):
        raise LlmassayError(f"lora: {path}: rsLoRA with a rank_pattern has no single llama.cpp alpha")
    return config


def read_base(model_path: str | Path) -> BaseModel:
    """Architecture, head counts and tensor shapes from the base GGUF's header."""
    import gguf

    path = Path(model_path)
    reader = gguf.GGUFReader(str(path))

    def field(key: str) -> Any:
        f = reader.fields.get(key)
        return None if f is None else f.contents()

    arch = str(field("general.architecture"))
    if arch not in ARCHITECTURES:
        raise LlmassayError(f"lora: {path.name} is a '{arch}' model; GGUF LoRA conversion knows "
                            f"{', '.join(ARCHITECTURES)} (the hf backend takes the adapter: --model-args adapter=DIR)")
    n_head = field(f"{arch}.attention.head_count")
    n_head_kv = field(f"{arch}.attention.head_count_kv") or n_head
    return BaseModel(path, arch, int(n_head), int(n_head_kv), int(field(f"{arch}.block_count")),
                     {t.name: tuple(int(d) for d in t.shape) for t in reader.tensors})


def permute_rows(weights: Any, n_head: int) -> Any:
    """HF's q/k row order → llama.cpp's (convert_hf_to_gguf's `LlamaModel.permute`): within
    each head, the two halves' rows interleave. Applied to LoRA B (rows = output features)."""
    out = weights.shape[0]
    return weights.reshape(n_head, 2, out // n_head // 2, *weights.shape[1:]).swapaxes(1, 2).reshape(weights.shape)


def _module_name(key: str) -> tuple[str, str] | None:
    """`base_model.model.X.lora_A.weight` → (X, "A"); None for any other tensor."""
    for part in ("A", "B"):
        suffix = f".lora_{part}.weight"
        if key.endswith(suffix):
            return key.removeprefix("base_model.model.")[: -len(suffix)], part
    return None


def lora_tensors(folder: Path, base: BaseModel) -> list[tuple[str, Any, Any, str]]:
    """(GGUF base-weight name, A, B, HF module) per adapted weight, B permuted where the base's
    rows are, each shape checked against the base; one-line errors for anything unmapped."""
    import gguf
    import numpy as np
    from safetensors.numpy import load_file

    try:
        tensors = load_file(str(folder / WEIGHTS))
    except Exception as exc:  # noqa: BLE001 - safetensors raises its own error types for a bad file
        raise LlmassayError(f"lora: {folder / WEIGHTS} is not a readable safetensors file ({exc})") from None
    parts: dict[str, dict[str, Any]] = {}
    for key, value in tensors.items():
        named = _module_name(key)
        if named is None:
            raise LlmassayError(f"lora: {folder / WEIGHTS}: tensor '{key}' is not a LoRA A/B weight "
                                "(embeddings, norms or saved modules do not convert)")
        parts.setdefault(named[0], {})[named[1]] = value
    arch = next(a for a, name in gguf.MODEL_ARCH_NAMES.items() if name == base.architecture)
    names = gguf.get_tensor_name_map(arch, base.n_blocks)
    out = []
    for module, ab in sorted(parts.items()):
        if set(ab) != {"A", "B"}:
            raise LlmassayError(f"lora: {folder / WEIGHTS}: '{module}' has lora_{''.join(ab)} but not both A and B")
        target = names.get_name(module)
        if target is None or f"{target}.weight" not in base.shapes:
            raise LlmassayError(f"lora: the adapter adapts '{module}', which {base.path.name} ({base.architecture}) "
                                "has no weight for (another base model?)")
        a, b = (np.ascontiguousarray(ab[k], dtype=np.float32) for k in ("A", "B"))
        want = base.shapes[f"{target}.weight"]  # GGUF dims: (in, out)
        if a.ndim != 2 or b.ndim != 2 or a.shape[0] != b.shape[1] or (a.shape[1], b.shape[0]) != want[:2]:
            raise LlmassayError(f"lora: '{module}' is {a.shape[1]}→{b.shape[0]} (rank {a.shape[0]}) in the adapter, "
                                f"but {target}.weight in {base.path.name} is {want[0]}→{want[1]} (another base model?)")
        if ARCHITECTURES[base.architecture] and target.endswith((".attn_q", ".attn_k")):
            b = np.ascontiguousarray(permute_rows(b, base.n_head if target.endswith(".attn_q") else base.n_head_kv))
        out.append((f"{target}.weight", a, b, module))
    if not out:
        raise LlmassayError(f"lora: {folder / WEIGHTS} holds no LoRA weights")
    return out


def convert(adapter_dir: str | Path, model_path: str | Path, out_path: str | Path) -> GgufLora:
    """Write the adapter in `adapter_dir` as a GGUF LoRA for the base GGUF `model_path`."""
    import gguf

    folder = adapter_folder(adapter_dir)
    config = read_adapter_config(folder)
    base = read_base(model_path)
    weights = lora_tensors(folder, base)
    rank = int(config["r"])
    alpha = float(config["lora_alpha"])
    if config.get("use_rslora"):  # PEFT scales by alpha / sqrt(r), llama.cpp by alpha / r
        alpha *= math.sqrt(rank)
    sha = adapter_sha256(folder)
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.partial")
    writer = gguf.GGUFWriter(str(tmp), base.architecture)
    writer.add_type(gguf.GGUFType.ADAPTER)
    writer.add_string(gguf.Keys.Adapter.TYPE, "lora")
    writer.add_float32(gguf.Keys.Adapter.LORA_ALPHA, alpha)
    writer.add_string("llmassay.adapter_sha256", sha)
    for name, a, b, _ in weights:
        writer.add_tensor(f"{name}.lora_a", a)
        writer.add_tensor(f"{name}.lora_b", b)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    tmp.replace(out)  # renamed into place: a killed conversion never leaves a half file
    return GgufLora(out, sha, base.architecture, alpha, rank)


def cached_gguf_lora(adapter_dir: str | Path, model_path: str | Path) -> GgufLora:
    """The adapter converted for `model_path`, from $LLMASSAY_HOME/gguf-lora when it was
    converted before (the name holds the adapter's hash and a hash of the base's layout: a
    base of other shapes converts, and is checked, afresh)."""
    folder = adapter_folder(adapter_dir)
    config = read_adapter_config(folder)
    base = read_base(model_path)
    sha = adapter_sha256(folder)
    key = stable_hash({"adapter": sha, "arch": base.architecture, "heads": [base.n_head, base.n_head_kv],
                       "shapes": sorted(base.shapes.items()), "converter": CONVERTER_VERSION})[:12]
    path = llmassay_home() / "gguf-lora" / f"{sha[:16]}-{base.architecture}-{key}.gguf"
    if not path.exists():
        return convert(folder, model_path, path)
    alpha = float(config["lora_alpha"]) * (math.sqrt(config["r"]) if config.get("use_rslora") else 1.0)
    return GgufLora(path, sha, base.architecture, alpha, int(config["r"]))
