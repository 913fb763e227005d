"""Quality against cost across runs (models, quantised variants): a Pareto page.

Each run directory gives one point: a quality metric (e.g. `accuracy.acc`, Wilson CI) and
a cost metric (e.g. `efficiency.decode_tps`, `efficiency.energy_wh_per_1k`,
`efficiency.e2e_s[p50]`: bootstrap or order-statistic CIs), both read from the run's results with their CIs.
A point is on the frontier when no other point is at least as good on both axes and
better on one — judged on the point estimates; the CIs, drawn on both axes, say how far
that judgement can be trusted (overlapping boxes: not distinguishable at this n).

The page is rendered by the report's Jinja environment (autoescaped: run labels and
model names are untrusted text) under the report's Content-Security-Policy, with no script.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llmassay.types import LlmassayError, bound_text

Interval = tuple[float, float, float]  # value, ci_low, ci_high
HIGHER_IS_CHEAPER = ("tps", "rps")  # cost metrics where more is better (rates): names ending so
COST_LABELS = {
    "efficiency.decode_tps": "decode tokens/s (mean, 95% CI)",
    "efficiency.prefill_tps": "prefill tokens/s (mean, 95% CI)",
    "efficiency.energy_wh_per_1k": "Wh per 1k answers (95% CI)",
    "efficiency.seconds_per_1k": "seconds per 1k answers (95% CI)",
    "efficiency.e2e_s[p50]": "median end-to-end latency, s (95% CI)",
}


@dataclass(frozen=True)
class ParetoPoint:
    label: str
    quality: Interval
    cost: Interval
    source: str = ""  # the run directory or file it came from
    on_frontier: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {"label": self.label, "quality": list(self.quality), "cost": list(self.cost), "source": self.source,
                "on_frontier": self.on_frontier}


def higher_is_better(cost_metric: str) -> bool:
    """Rates (tokens/s, requests/s) are better high; times, energy, money and size low."""
    return cost_metric.split("[")[0].endswith(HIGHER_IS_CHEAPER)


def frontier(points: Sequence[ParetoPoint], cost_higher_better: bool) -> list[ParetoPoint]:
    """The points with `on_frontier` set: none other dominates them (quality is better high)."""
    def better_cost(a: float, b: float) -> bool:
        return a > b if cost_higher_better else a < b

    out = []
    for p in points:
        dominated = any(
            q is not p and q.quality[0] >= p.quality[0] and not better_cost(p.cost[0], q.cost[0])
            and (q.quality[0] > p.quality[0] or better_cost(q.cost[0], p.cost[0]))
            for q in points
        )
        out.append(ParetoPoint(p.label, p.quality, p.cost, p.source, not dominated))
    return out


def _metric(results: dict[str, Any], task: str, spec: str, where: str) -> Interval:
    """`probe.metric` of `task` in a results dict, as (value, ci_low, ci_high)."""
    probe, _, name = spec.partition(".")
    if not name:
        raise LlmassayError(f"pareto: metric {spec!r} must be written probe.metric (e.g. accuracy.acc)")
    m = ((results.get("results") or {}).get(task) or {}).get(probe, {}).get(name)
    if not isinstance(m, dict) or not isinstance(m.get("value"), (int, float)) or not all(
            m.get(k) is None or isinstance(m.get(k), (int, float)) for k in ("ci_low", "ci_high")):
        raise LlmassayError(f"pareto: {where} has no metric {spec} for task {task}")
    # A bound that is not estimable (null: types.Metric) is an infinity here, never a number.
    low = -math.inf if m.get("ci_low") is None else float(m["ci_low"])
    high = math.inf if m.get("ci_high") is None else float(m["ci_high"])
    return float(m["value"]), low, high


def points_from_runs(run_paths: Sequence[str | Path], task: str, quality: str, cost: str,
                     labels: Sequence[str] | None = None) -> list[ParetoPoint]:
    """One point per run directory (or results file); labels default to the model specs."""
    from llmassay.report.rundir import load_run

    points = []
    for i, path in enumerate(run_paths):
        run = load_run(path)
        label = labels[i] if labels and i < len(labels) else run.model_spec
        where = str(run.results_path)
        points.append(ParetoPoint(label, _metric(run.results, task, quality, where),
                                  _metric(run.results, task, cost, where), str(run.root)))
    return frontier(points, higher_is_better(cost))


def pareto_svg(points: Sequence[ParetoPoint], quality_label: str, cost_label: str, key: str = "pareto") -> str:
    from llmassay.efficiency.plots import pareto

    return pareto([{"label": p.label + (" (frontier)" if p.on_frontier else ""), "x": p.cost, "y": p.quality}
                   for p in points], cost_label, quality_label,
                  frontier=[(p.cost[0], p.quality[0]) for p in sorted(points, key=lambda p: p.cost[0])
                            if p.on_frontier], key=key)


def render_pareto_html(title: str, panels: Sequence[dict[str, Any]], notes: Sequence[str] = ()) -> str:
    """A self-contained page: for each panel {"title", "quality", "cost", "points"}, the plot
    and a table of the points with their CIs and whether they are on the frontier."""
    from markupsafe import Markup

    from llmassay import __version__
    from llmassay.report.html import environment

    shown = []
    for i, panel in enumerate(panels):
        points = panel["points"]
        rows = [[p.label, _interval(p.quality), _interval(p.cost), "yes" if p.on_frontier else "no"] for p in points]
        svg = pareto_svg(points, panel["quality"], panel["cost"], f"pareto-{i}") if points else ""
        shown.append({**panel, "svg": Markup(svg), "rows": rows})  # matplotlib escapes the text it draws
    return environment().get_template("pareto.html.j2").render(
        version=__version__, title=title, panels=shown, notes=list(notes), script_hashes="'none'")


def write_pareto_html(path: Path, title: str, panels: Sequence[dict[str, Any]], notes: Sequence[str] = ()) -> Path:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(render_pareto_html(title, panels, notes), encoding="utf-8")
    except OSError as exc:
        raise LlmassayError(f"{path}: cannot write the Pareto page ({exc.strerror or exc})") from None
    return path


def _interval(i: Interval) -> str:
    digits = 3 if abs(i[0]) < 100 else 1
    low, high = (bound_text(None if math.isinf(b) else b, f".{digits}f") for b in i[1:])
    return f"{i[0]:.{digits}f} [{low}, {high}]"
