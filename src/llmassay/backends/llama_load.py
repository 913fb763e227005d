"""Open a llama.cpp model the one safe way: AMX repacking off where it crashes, and a thread
count that does not oversubscribe a busy machine.

llama.cpp built with AMX repacks weights into its AMX buffer type and segfaults in the
first matrix product on Sapphire/Granite Rapids CPUs (upstream llama.cpp issue 20824, no
fix). `scripts/install.sh` builds without AMX; a llama-cpp-python that a user built with
AMX is still made safe here by loading with `use_extra_bufts = False` (no repacking; other
repacks, for AVX2/AVX-512, are lost too, so it is done only where the build has AMX).
llama-cpp-python's `Llama()` takes no such argument, so the default model params are
swapped for the duration of the load (`llama_internals.load`).

GPU offload (`n_gpu_layers`, `main_gpu`, llama-cpp-python's own spellings) is checked here
too: a build without GPU support would otherwise ignore the request and run on the CPU.
"""

from __future__ import annotations

from typing import Any

from llmassay.backends import llama_internals
from llmassay.machine import cpu_has_amx, default_threads, llama_build_has_amx
from llmassay.types import LlmassayError


def extra_bufts_default() -> bool:
    """False (no weight repacking) where llama.cpp was built with AMX and this CPU has it."""
    return not (llama_build_has_amx() and cpu_has_amx())


def gpu_args(n_gpu_layers: Any = 0, main_gpu: Any = 0, *, who: str = "llamacpp") -> dict[str, int]:
    """`n_gpu_layers` (0: CPU only, the default; -1: every layer) and `main_gpu` checked as
    llama-cpp-python takes them; a GPU request on a CPU-only build is a one-line error."""
    checked = {}
    for key, value, low in (("n_gpu_layers", n_gpu_layers, -1), ("main_gpu", main_gpu, 0)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise LlmassayError(f"{who}: {key} must be an integer >= {low}, not {value!r}")
        checked[key] = value
    if checked["n_gpu_layers"] != 0 and not llama_internals.supports_gpu_offload():
        raise LlmassayError(
            f"{who}: n_gpu_layers={n_gpu_layers} asks for a GPU, but this llama-cpp-python "
            f"{llama_internals.installed_version()} is built for the CPU only (reinstall it with "
            "CMAKE_ARGS=-DGGML_CUDA=on, or leave n_gpu_layers out)")
    return checked


def open_llama(model_path: str, *, n_threads: int | None = None, use_extra_bufts: bool | None = None,
               n_gpu_layers: int = 0, main_gpu: int = 0, **kwargs: Any) -> Any:
    """`llama_cpp.Llama(model_path, **kwargs)` with `n_threads`/`n_threads_batch` (None: the
    free cores, `machine.default_threads`), `use_extra_bufts` (None: off where AMX
    would crash) and GPU offload (`gpu_args`: CPU unless asked)."""
    gpu = gpu_args(n_gpu_layers, main_gpu)
    threads = int(n_threads) if n_threads else default_threads()
    extra = extra_bufts_default() if use_extra_bufts is None else bool(use_extra_bufts)
    return llama_internals.load(str(model_path), use_extra_bufts=extra, n_threads=threads,
                                n_threads_batch=threads, n_gpu_layers=gpu["n_gpu_layers"],
                                main_gpu=gpu["main_gpu"], **kwargs)
