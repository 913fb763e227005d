"""The quantisation sweep as a Markdown table and Pareto points (accuracy against size)."""

from __future__ import annotations

from typing import Any

from llmassay.types import bound_text


def _ci(m: Any, pct: bool = False, digits: int = 3) -> str:
    if m is None:
        return "-"
    if pct:
        return f"{m.value:.0%} [{bound_text(m.ci_low, '.0%')}, {bound_text(m.ci_high, '.0%')}]"
    return f"{m.value:.{digits}f} [{bound_text(m.ci_low, f'.{digits}f')}, {bound_text(m.ci_high, f'.{digits}f')}]"


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


COST_PANELS = (("size_mb", "file size, MB (exact)"), ("efficiency.decode_tps", "decode tokens/s (mean, 95% CI)"),
               ("efficiency.energy_wh_per_1k", "Wh per 1k answers (estimated or measured, 95% CI)"))


def variant_panels(variants: list[Any], task: str) -> list[dict[str, Any]]:
    """Pareto panels of the sweep: accuracy against size, and against decode tokens/s and
    energy when the variants were timed (`--efficiency`)."""
    from llmassay.efficiency.pareto import ParetoPoint, frontier, higher_is_better

    panels = []
    for cost, cost_label in COST_PANELS:
        points = []
        for v in variants:
            acc, metrics = _accuracy(v), v.metrics or {}
            if acc is None:
                continue
            if cost == "size_mb":
                x = (v.size_mb, v.size_mb, v.size_mb)
            elif cost in metrics:
                x = (metrics[cost].value, metrics[cost].ci_low, metrics[cost].ci_high)
            else:
                continue
            points.append(ParetoPoint(v.qtype, (acc.value, acc.ci_low, acc.ci_high), x, str(v.path)))
        if points:
            quality = f"accuracy on {task} (Wilson 95% CI)"
            panels.append({"title": f"accuracy vs {cost_label.split(' (')[0]}", "quality": quality, "cost": cost_label,
                           "points": frontier(points, higher_is_better(cost))})
    return panels


def pareto_points(variants: list[Any]) -> list[dict[str, Any]]:
    """One point per variant with an accuracy: x = size (exact), y = accuracy with its CI."""
    points = []
    for v in variants:
        acc = _accuracy(v)
        if acc is not None:
            points.append({"label": v.qtype, "x": (v.size_mb, v.size_mb, v.size_mb),
                           "y": (acc.value, acc.ci_low, acc.ci_high)})
    return points
