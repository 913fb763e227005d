"""What the machine is and what a run cost it: CPU model, threads, peak RSS, CPU time, energy.

Energy is measured from RAPL (`/sys/class/powercap/intel-rapl:*/energy_uj`, the package
counters) when the file is readable — on most Linux hosts it is root-only since
CVE-2020-8694, which is why CodeCarbon falls back (codecarbon #244, #477). Otherwise it is
*estimated* as CPU-seconds × a per-core power figure, and every figure says which it is.

The default figure is CodeCarbon's, formula and constant: its process-mode CPU estimate is
power = TDP × (process CPU-seconds per second) / logical cores (`CPU._get_power_from_cpu_load`,
tracking_mode "process", cores from `psutil.cpu_count()`), and for a CPU not in its table
the TDP is `POWER_CONSTANT = 85` W ("default W value for a CPU if no model is found in the
ref csv"), both in `codecarbon/external/hardware.py` of mlco2/codecarbon (read at commit
004e88f6e4ee4b7e7bc6a42f96c869bc199f52a0). So: 85 W / logical cores per CPU-second. It is
a generic desktop/server package figure, not this machine's: on a virtual machine that sees
a few vCPUs of a many-core server CPU it overstates the power of each vCPU many times
(an AMD EPYC 7763 is 280 W over 128 threads, ≈ 2.2 W per thread, AMD's datasheet), so pass
this host's figure with `-P efficiency.watts_per_core=…` and the result says it was given.
"""

from __future__ import annotations

import os
import platform
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from llmassay.machine import cpu_model

RAPL_ROOT = Path("/sys/class/powercap")
DEFAULT_PACKAGE_WATTS = 85.0
POWER_SOURCE = ("85 W / logical cores: CodeCarbon's POWER_CONSTANT (TDP of an unknown CPU) in its process-mode "
                "CPU-load formula, codecarbon/external/hardware.py; overstates a VM's few vCPUs of a server CPU")
FEW_CORES = 4  # at most this many logical cores: likely a slice of a bigger CPU (see the docstring)
MEASURED, ESTIMATED = "measured", "estimated"


def thread_count() -> int:
    """Threads of this process now (llama.cpp's worker pool included)."""
    try:
        for line in Path("/proc/self/status").read_text(encoding="utf-8").splitlines():
            if line.startswith("Threads:"):
                return int(line.split()[1])
    except OSError:
        pass
    import threading

    return threading.active_count()


def peak_rss_mb() -> float | None:
    """Peak resident set size of this process since it started; None where the OS does not
    say (Windows has no `resource` module). ru_maxrss is KiB on Linux, bytes on macOS."""
    try:
        import resource  # Unix only: imported here so the package imports everywhere
    except ImportError:
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (2**20 if sys.platform == "darwin" else 2**10)


def host_facts() -> dict[str, Any]:
    return {"cpu_model": cpu_model(), "logical_cores": os.cpu_count() or 1, "platform": platform.platform(),
            "python": platform.python_version()}


def _rapl_files(root: Path = RAPL_ROOT) -> list[Path]:
    """Readable package-level energy counters (intel-rapl:N, not their sub-zones)."""
    files = []
    for zone in sorted(root.glob("intel-rapl:*")):
        if zone.name.count(":") == 1 and (zone / "energy_uj").exists():
            try:
                int((zone / "energy_uj").read_text())
                files.append(zone / "energy_uj")
            except (OSError, ValueError):
                return []  # one unreadable package: the sum would be wrong
    return files


@dataclass(frozen=True)
class Energy:
    joules: float
    kind: str  # "measured" (RAPL) or "estimated"
    method: str

    @property
    def wh(self) -> float:
        return self.joules / 3600

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "wh": self.wh}


class EnergyMeter:
    """Energy of a stretch of work: `start()`, run, `stop(cpu_seconds)`."""

    def __init__(self, watts_per_core: float | None = None, rapl_root: Path = RAPL_ROOT) -> None:
        cores = os.cpu_count() or 1
        self.watts_per_core = watts_per_core if watts_per_core else DEFAULT_PACKAGE_WATTS / cores
        self.source = "given by -P efficiency.watts_per_core" if watts_per_core else POWER_SOURCE
        self.rapl = _rapl_files(rapl_root)
        self._start: list[int] = []

    @property
    def kind(self) -> str:
        return MEASURED if self.rapl else ESTIMATED

    def start(self) -> None:
        self._start = [int(f.read_text()) for f in self.rapl]

    def stop(self, cpu_seconds: float) -> Energy:
        if self.rapl and self._start:
            total = 0
            for f, before in zip(self.rapl, self._start):
                after = int(f.read_text())
                if after < before:  # the counter wrapped
                    limit = f.with_name("max_energy_range_uj")
                    after += int(limit.read_text()) if limit.exists() else 0
                total += after - before
            return Energy(total / 1e6, MEASURED, "RAPL package counters (whole host, not only this process)")
        return Energy(cpu_seconds * self.watts_per_core, ESTIMATED,
                      f"CPU-seconds × {self.watts_per_core:.2f} W per core ({self.source})")


def clock() -> tuple[float, float]:
    """(wall, process CPU) seconds now."""
    return time.perf_counter(), time.process_time()


def energy_caveat(kinds: list[str], watts_per_core: float) -> dict[str, str]:
    """A warning for the default estimate on a host with few logical cores (see the docstring)."""
    cores = os.cpu_count() or 1
    if ESTIMATED not in kinds or watts_per_core or cores > FEW_CORES:
        return {}
    return {"caveat": f"estimated with CodeCarbon's generic 85 W over only {cores} logical cores "
                      f"({DEFAULT_PACKAGE_WATTS / cores:.1f} W each): on a VM slice of a server CPU this overstates "
                      "energy several-fold; pass -P efficiency.watts_per_core=<W per logical core of this CPU>"}
