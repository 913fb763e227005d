"""Open a llama.cpp model the one safe way: AMX repacking off where it crashes, and a thread
count that does not oversubscribe a busy machine.

llama.cpp built with AMX repacks weights into its AMX buffer type and segfaults in the
first matrix product on Sapphire/Granite Rapids CPUs (upstream llama.cpp issue 20824, no
fix). `scripts/install.sh` builds without AMX; a llama-cpp-python that a user built with
AMX is still made safe here by loading with `use_extra_bufts = False` (no repacking; other
repacks, for AVX2/AVX-512, are lost too, so it is done only where the build has AMX).
llama-cpp-python's `Llama()` takes no such argument, so the default model params are
swapped for the duration of the load (`llama_internals.load`).
"""

from __future__ import annotations

from typing import Any

from llmassay.backends import llama_internals
from llmassay.machine import cpu_has_amx, default_threads, llama_build_has_amx


def extra_bufts_default() -> bool:
    """False (no weight repacking) where llama.cpp was built with AMX and this CPU has it."""
    return not (llama_build_has_amx() and cpu_has_amx())


def open_llama(model_path: str, *, n_threads: int | None = None, use_extra_bufts: bool | None = None,
               **kwargs: Any) -> Any:
    """`llama_cpp.Llama(model_path, **kwargs)` with `n_threads`/`n_threads_batch` (None: the
    free cores, `machine.default_threads`) and `use_extra_bufts` (None: off where AMX
    would crash)."""
    threads = int(n_threads) if n_threads else default_threads()
    extra = extra_bufts_default() if use_extra_bufts is None else bool(use_extra_bufts)
    return llama_internals.load(str(model_path), use_extra_bufts=extra, n_threads=threads,
                                n_threads_batch=threads, **kwargs)
