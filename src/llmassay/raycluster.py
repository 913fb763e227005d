"""Joining or starting Ray, shared by the engine's and the audit's Ray executors."""

from __future__ import annotations

from typing import Any

from llmassay.types import LlmassayError


def connect_ray(num_cpus: int | None = None, address: str | None = None) -> tuple[Any, bool]:
    """The `ray` module, initialised once per process, and whether this call started it
    (the caller that started Ray shuts it down). Joins `address`, else RAY_ADDRESS (read by
    Ray itself), else starts a local cluster with `num_cpus` (default: every CPU)."""
    try:
        import ray
    except ImportError:
        raise LlmassayError("--executor ray needs Ray: pip install 'llmassay[ray]'") from None
    if ray.is_initialized():
        return ray, False
    kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False, "configure_logging": False}
    if address:
        kwargs["address"] = address
    elif num_cpus is not None:
        kwargs["num_cpus"] = num_cpus
    ray.init(**kwargs)
    return ray, True
