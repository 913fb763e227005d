"""The machine a figure came from: CPU model and features, llama.cpp's build, free cores.

Why a module of its own: llama.cpp figures are reproducible per build, not across builds
(README, "Reproducibility"), and its AMX kernels crash on some Intel CPUs (upstream
llama.cpp issue 20824), so every results file names the CPU and the llama.cpp build, the
install smoke check names them when it fails, and the thread default reads how many cores
are busy before it starts llama.cpp's spinning worker pool.
"""

from __future__ import annotations

import os
import platform
import time
from functools import lru_cache
from pathlib import Path
from typing import Any

# The instruction-set features that decide which llama.cpp kernels run (a results file
# records those present; the whole /proc/cpuinfo flag list is noise).
KERNEL_FEATURES = ("avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx512_bf16",
                   "avx_vnni", "amx_tile", "amx_int8", "amx_bf16", "neon", "asimd", "sve")
AMX_FEATURES = ("amx_tile", "amx_int8", "amx_bf16")


@lru_cache(maxsize=1)
def _cpuinfo() -> str:
    """Read once per process: the model, the flags and the environment block all come from it."""
    try:
        return Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def cpu_model() -> str:
    for line in _cpuinfo().splitlines():
        if line.lower().startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine() or "unknown"


def cpu_flags() -> set[str]:
    for line in _cpuinfo().splitlines():
        if line.startswith(("flags", "Features")):
            return set(line.split(":", 1)[1].split())
    return set()


def kernel_features(flags: set[str] | None = None) -> list[str]:
    flags = cpu_flags() if flags is None else flags
    return [f for f in KERNEL_FEATURES if f in flags]


def cpu_has_amx(flags: set[str] | None = None) -> bool:
    flags = cpu_flags() if flags is None else flags
    return any(f in flags for f in AMX_FEATURES)


@lru_cache(maxsize=1)
def llama_system_info() -> str | None:
    """llama.cpp's own `system_info` line (the features its CPU backend was built with and
    uses), or None where llama-cpp-python is not importable."""
    from llmassay.backends.llama_internals import system_info

    return system_info()


def llama_build_has_amx(system_info: str | None = None) -> bool:
    """True when llama.cpp was compiled with its AMX kernels (`AMX_INT8 = 1` in system_info)."""
    info = llama_system_info() if system_info is None else system_info
    return info is not None and "AMX_INT8 = 1" in info


def _busy_cpus(interval_s: float) -> float | None:
    """CPUs busy with other work over `interval_s` (from /proc/stat), None where unreadable."""
    def snapshot() -> tuple[int, int] | None:
        try:
            fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
        except (OSError, IndexError):
            return None
        values = [int(v) for v in fields[:8]]
        idle = values[3] + values[4]  # idle + iowait
        return sum(values), idle

    first = snapshot()
    if first is None:
        return None
    time.sleep(interval_s)
    second = snapshot()
    if second is None or second[0] <= first[0]:
        return None
    total, idle = second[0] - first[0], second[1] - first[1]
    return (os.cpu_count() or 1) * (1 - idle / total)


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def default_threads(interval_s: float = 0.25) -> int:
    """llama.cpp's thread count when none is given: the cores this process may use minus
    those already busy, at least 1. llama.cpp's workers spin while they wait for each other,
    so one more thread than there are free cores ran about 10x slower here (docs/benchmarks.md,
    "Threads under contention"); a thread too few costs at most the share of that core."""
    cores = usable_cores()
    busy = _busy_cpus(interval_s)
    if busy is None:
        return cores
    return max(1, min(cores, cores - int(busy + 0.5)))


def environment_facts() -> dict[str, Any]:
    """The results file's `environment` block: enough to trace a figure to the machine
    and llama.cpp build that made it."""
    return {
        "cpu_model": cpu_model(),
        "cpu_features": kernel_features(),
        "logical_cores": os.cpu_count() or 1,
        "platform": platform.platform(),
        "llama_cpp_system_info": llama_system_info(),
    }
