"""The quantisation sweep as a Markdown table and Pareto points (accuracy against size)."""

from __future__ import annotations

from typing import Any


def _ci(m: Any, pct: bool = False, digits: int = 3) -> str:
    if m is None:
        return "-"
    if pct:
        return f"{m.value:.0%} [{m.ci_low:.0%}, {m.ci_high:.0%}]"
    return f"{m.value:.{digits}f} [{m.ci_low:.{digits}f}, {m.ci_high:.{digits}f}]"


def _accuracy(v: Any) -> Any:
    metrics = v.metrics or {}
    return metrics.get("accuracy.acc") or metrics.get("accuracy.exact_match")


def quantize_markdown(variants: list[Any], note: str, task: str) -> str:
    lines = [f"Note: {note}.", "",
             f"| variant | size MB | KL vs source, nats | same top token | Δp | accuracy ({task}) | spread | note |",
             "|---|---|---|---|---|---|---|---|"]
    for v in variants:
        d = v.divergence
        lines.append(f"| {v.qtype} | {v.size_mb:.1f} | {_ci(d.kl, digits=4)} | {_ci(d.same_top, pct=True)} | "
                     f"{_ci(d.delta_p)} | {_ci(_accuracy(v), pct=True)} | "
                     f"{_ci((v.metrics or {}).get('brittleness.spread'), pct=True)} | {v.fallback} |")
    return "\n".join(lines)


def pareto_points(variants: list[Any]) -> list[dict[str, Any]]:
    """One point per variant with an accuracy: x = size (exact), y = accuracy with its CI."""
    points = []
    for v in variants:
        acc = _accuracy(v)
        if acc is not None:
            points.append({"label": v.qtype, "x": (v.size_mb, v.size_mb, v.size_mb),
                           "y": (acc.value, acc.ci_low, acc.ci_high)})
    return points
