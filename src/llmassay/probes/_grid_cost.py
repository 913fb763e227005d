"""What a probe's grid asks of a model before it runs: the probe, run against a backend that only
counts (`longctx.cost.CountingBackend`), summed into a `longctx.cost.Cost`. It lives with the
probes because it runs one; the counting and the arithmetic are domain code in `longctx.cost`."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from llmassay.longctx.cost import Cost, CountingBackend, prefill_tokens, request_text

if TYPE_CHECKING:
    from llmassay.probes.base import Probe
    from llmassay.tasks.loader import Task


def grid_cost(probe: Probe, task: Task, encode: Callable[[str], list[int]], n_ctx: int, options: dict[str, Any],
              chat: bool, seed: int = 0) -> Cost:
    """Run `probe` on `task` against a counting backend and count what it asked."""
    from llmassay.engine.engine import Engine
    from llmassay.probes.base import ProbeConfig

    backend = CountingBackend(encode, n_ctx)
    cfg = ProbeConfig(seed, 0.0, tuple(sorted(options.items())), chat)
    probe.evaluate(task, task.samples, Engine(backend), probe.options(options), cfg)
    asked = backend.asked
    total = [len(encode(request_text(r))) for r in asked]
    fresh = prefill_tokens(asked, backend)
    # positions shared..total-1 are prefilled: their sum is (total(total-1) - shared(shared-1)) / 2
    positions = sum((t * (t - 1) - (t - f) * (t - f - 1)) // 2 for t, f in zip(total, fresh))
    return Cost(len(asked), sum(total), sum(fresh), sum(r.max_tokens for r in asked), positions,
                sum(r.max_tokens * t for r, t in zip(asked, total)))
