"""Where an `hf/` model comes from and where it runs, checked before anything loads.

Source: a local folder (as before), or a hub model id, which transformers resolves through
its own cache (HF_HOME / HF_HUB_CACHE) and its own offline flag (HF_HUB_OFFLINE): nothing
here sets it, so a user with a network downloads, and one without reads the cache.
Placement: lm-eval's spellings `device` (cpu, the default; cuda, cuda:N, mps), `device_map`
(auto, balanced, balanced_low_0, sequential or a device; accelerate places the layers) and
`dtype` (auto, float16, bfloat16, float32). A request the machine cannot serve (cuda on a
machine without one) is a one-line error naming the argument, not a traceback from torch.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from llmassay.types import LlmassayError

DTYPES = ("auto", "float16", "bfloat16", "float32")
DEVICE_MAPS = ("auto", "balanced", "balanced_low_0", "sequential")
_DEVICE = re.compile(r"^(cpu|mps|cuda)(:\d+)?$")


def torch_dtype(dtype: Any, torch: Any) -> Any:
    """`dtype=` as from_pretrained takes it: "auto" or a torch dtype."""
    if dtype not in DTYPES:
        raise LlmassayError(f"hf: dtype '{dtype}' is not one of {', '.join(DTYPES)}")
    return "auto" if dtype == "auto" else getattr(torch, dtype)


def check_device(device: Any, torch: Any, field: str = "device") -> str:
    """`device` normalised ("cuda" → "cuda:0"), or a one-line error when this machine's
    torch cannot reach it."""
    if not isinstance(device, str) or not _DEVICE.match(device):
        raise LlmassayError(f"hf: {field} '{device}' is not cpu, cuda, cuda:N or mps")
    kind, _, index = device.partition(":")
    if kind == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise LlmassayError(f"hf: {field}={device} asks for a CUDA GPU, but torch {torch.__version__} sees none "
                                f"(no GPU, or a CPU-only torch build); use {field}=cpu or leave it out")
        if int(index or 0) >= count:
            raise LlmassayError(f"hf: {field}={device}: torch sees {count} CUDA GPU(s), numbered from 0")
        return f"cuda:{int(index or 0)}"
    if kind == "mps" and not torch.backends.mps.is_available():
        raise LlmassayError(f"hf: {field}=mps asks for Apple's GPU, but torch {torch.__version__} cannot use it here")
    return device


def check_device_map(device_map: Any, torch: Any) -> str | None:
    """A named accelerate placement or one device; None: the model stays where `device` puts it."""
    if device_map is None or device_map in DEVICE_MAPS:
        if device_map is not None:
            try:
                import accelerate  # noqa: F401  (transformers needs it for a placement plan)
            except ImportError:
                raise LlmassayError(f"hf: device_map={device_map} needs the accelerate package "
                                    "(pip install 'llmassay[hf]')") from None
        return device_map
    if isinstance(device_map, str) and _DEVICE.match(device_map):
        return check_device(device_map, torch, field="device_map")
    raise LlmassayError(f"hf: device_map '{device_map}' is not one of {', '.join(DEVICE_MAPS)} or a device "
                        "(cpu, cuda:N, mps)")


def is_hub_id(model: str) -> bool:
    """`org/name` or `name` as the hub spells ids; a path-like string (/, ./, ~, two
    slashes) is a local folder that is missing, never a hub id."""
    if model.startswith(("/", ".", "~")) or model.count("/") > 1 or "\\" in model:
        return False
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    try:
        validate_repo_id(model)
    except HFValidationError:
        return False
    return True


def hub_error(model: str, exc: BaseException) -> LlmassayError:
    """One line for a hub id transformers or huggingface_hub could not resolve."""
    from huggingface_hub import constants
    from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError, RevisionNotFoundError

    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if isinstance(exc, GatedRepoError) or "gated repo" in text:
        return LlmassayError(f"hf: '{model}' is a gated hub model: accept its terms on the hub and log in "
                             "(hf auth login, or HF_TOKEN)")
    if isinstance(exc, RevisionNotFoundError):
        return LlmassayError(f"hf: '{model}': {text}")
    if isinstance(exc, RepositoryNotFoundError) or "not a valid model identifier" in text:
        return LlmassayError(f"hf: '{model}' is neither a local directory nor a model on the hub")
    offline = " (HF_HUB_OFFLINE is set)" if constants.HF_HUB_OFFLINE else ""
    if constants.HF_HUB_OFFLINE or "couldn't connect" in text.lower() or "cannot find the requested files" in text:
        return LlmassayError(f"hf: '{model}' is not a local directory and not in the hub cache{offline}: "
                             "it needs a network, or a local path (hf/<dir>)")
    return LlmassayError(f"hf: '{model}' could not be loaded from the hub ({text})")


def hub_snapshot(model: str, revision: str | None, filename: str | None = None) -> Path:
    """The cache folder holding what was (or, with `filename`, is now) downloaded for
    `model` at `revision`: the weights to fingerprint, named by their commit."""
    import huggingface_hub

    try:
        if filename is not None:  # a single-file GGUF: download it, read it like a local folder
            return Path(huggingface_hub.hf_hub_download(model, filename, revision=revision)).parent
        return Path(huggingface_hub.snapshot_download(model, revision=revision, local_files_only=True))
    except (OSError, ValueError) as exc:  # huggingface_hub's errors are OSErrors (HTTP) or ValueErrors
        raise hub_error(model, exc) from None


def with_adapter(model: Any, adapter: str) -> tuple[Any, str]:
    """`model` with the PEFT (LoRA) adapter in folder `adapter` merged into its weights (the
    forward pass stays the base model's own, so logits_to_keep and the KV-cache paths work),
    and the adapter's hash: its config and weight files, for the fingerprint."""
    from llmassay.tune.gguf_lora import adapter_sha256

    folder = Path(adapter).expanduser()
    if not (folder / "adapter_config.json").is_file():
        raise LlmassayError(f"hf: adapter '{adapter}' is not a PEFT adapter folder (no adapter_config.json)")
    try:
        from peft import PeftModel
    except ImportError as exc:
        raise LlmassayError(f"hf: adapter= needs peft ({exc}); pip install 'llmassay[tune]'") from None
    digest = adapter_sha256(folder)  # the llamacpp backend's lora= hashes the same files
    try:
        merged = PeftModel.from_pretrained(model, str(folder)).merge_and_unload()
    except (ValueError, KeyError, RuntimeError) as exc:  # another architecture's adapter, shape mismatches
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise LlmassayError(f"hf: adapter '{adapter}' does not fit this model ({reason})") from None
    return merged, digest
