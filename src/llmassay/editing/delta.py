"""An edit as a file: the changed matrices' difference (edited − original) in
`delta.safetensors` — one matrix for ROME, one per layer for MEMIT, each under its parameter
name, so a folder written before MEMIT existed loads unchanged — and `edits.json` saying
what was edited, where and on which weights. `apply_delta` adds it to a loaded model (`--model-args edits=DIR` on the hf backend) and
returns the delta's sha256, which the backend puts in its fingerprint so cached answers of
the edited and the unedited model never mix."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from llmassay.hashing import file_sha256
from llmassay.types import LlmassayError

DELTA = "delta.safetensors"
MANIFEST = "edits.json"


def save_delta(directory: str | Path, deltas: dict[str, Any], manifest: dict[str, Any]) -> str:
    """Write the delta and its manifest (which records the delta's sha256); return the hash."""
    from safetensors.torch import save_file

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    save_file({k: v.detach().float().contiguous() for k, v in deltas.items()}, str(directory / DELTA))
    sha = file_sha256(directory / DELTA)
    (directory / MANIFEST).write_text(json.dumps({**manifest, "delta_sha256": sha}, indent=2, ensure_ascii=False)
                                      + "\n", encoding="utf-8")
    return sha


def read_manifest(directory: str | Path) -> dict[str, Any]:
    path = Path(directory) / MANIFEST
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError:
        raise LlmassayError(f"edits={directory}: no {MANIFEST} there (write one with `llmassay edit`)") from None
    except json.JSONDecodeError as exc:
        raise LlmassayError(f"edits={directory}: {MANIFEST} is not JSON ({exc.msg})") from None
    if not isinstance(data, dict):
        raise LlmassayError(f"edits={directory}: {MANIFEST} is not a JSON object")
    return data


def apply_delta(model: Any, directory: str | Path, base_weights: Any = None) -> str:
    """Add the folder's delta to `model`'s parameters in place; the delta's sha256.

    `base_weights` (the backend's weights_sha256) is checked against the manifest's, so a
    delta made on one model is never added to another of the same shape."""
    import torch
    from safetensors.torch import load_file

    directory = Path(directory).expanduser()
    manifest = read_manifest(directory)
    if not (directory / DELTA).exists():
        raise LlmassayError(f"edits={directory}: no {DELTA} there")
    sha = file_sha256(directory / DELTA)
    if manifest.get("delta_sha256") not in (None, sha):
        raise LlmassayError(f"edits={directory}: {DELTA} does not match the sha256 in {MANIFEST}")
    made_on = manifest.get("base_weights_sha256")
    if base_weights is not None and made_on is not None and made_on != base_weights:
        raise LlmassayError(f"edits={directory}: the delta was made on other weights ({manifest.get('model', '?')})")
    params = dict(model.named_parameters())
    deltas = load_file(str(directory / DELTA))
    for name, delta in deltas.items():  # every matrix checked before any is added: all or nothing
        if name not in params:
            raise LlmassayError(f"edits={directory}: the model has no parameter {name}")
        if tuple(params[name].shape) != tuple(delta.shape):
            raise LlmassayError(f"edits={directory}: {name} is {tuple(params[name].shape)} in the model, "
                                f"{tuple(delta.shape)} in the delta")
    for name, delta in deltas.items():
        with torch.no_grad():
            params[name].add_(delta.to(params[name].dtype).to(params[name].device))
    return sha
