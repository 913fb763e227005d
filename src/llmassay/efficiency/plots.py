"""Load-test curves and the quantisation Pareto plot, as SVG (the report's matplotlib setup)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from llmassay.report.plots import PALETTE, _figure, _svg


def loadtest_curves(levels: Sequence[Any]) -> str:
    """Throughput and latency (p50, p95 with order-statistic CIs) against the load, one line per
    mode: fixed concurrency (closed loop) and Poisson rate (open loop)."""
    modes = [m for m in ("concurrency", "rate") if any(lv.mode == m for lv in levels)]
    with _figure("loadtest", 4.2 * len(modes), 3.4) as fig:
        axes = fig.subplots(2, len(modes), squeeze=False)
        for col, mode in enumerate(modes):
            mine = [lv for lv in levels if lv.mode == mode and "throughput_rps" in lv.metrics]
            xs = [lv.level for lv in mine]
            top, bottom = axes[0][col], axes[1][col]
            top.plot(xs, [lv.metrics["throughput_rps"].value for lv in mine], "o-", color=PALETTE[0], label="throughput")
            top.plot(xs, [lv.metrics["goodput_rps"].value for lv in mine], "s--", color=PALETTE[2], label="goodput")
            top.set_ylabel("requests/s")
            top.legend(frameon=False)
            for i, q in enumerate(("p50", "p95")):
                ms = [lv.metrics[f"e2e_s[{q}]"] for lv in mine]
                err = [[_whisker(m.value, m.ci_low) for m in ms], [_whisker(m.value, m.ci_high) for m in ms]]
                bottom.errorbar(xs, [m.value for m in ms], yerr=err, fmt="o-", capsize=3, color=PALETTE[1 + 2 * i],
                                label=f"E2E {q} (95% CI; n.e.: not estimable)")
                for x, m in zip(xs, ms):
                    if m.ci_low is None or m.ci_high is None:
                        bottom.annotate("n.e.", (x, m.value), fontsize=7, xytext=(3, 3), textcoords="offset points")
            bottom.set_ylabel("seconds")
            bottom.set_xlabel("concurrent requests" if mode == "concurrency" else "Poisson arrival rate (req/s)")
            bottom.legend(frameon=False)
        return _svg(fig)


def _whisker(value: float, bound: float | None) -> float:
    """Length of a CI whisker; none for a bound that is not estimable (annotated instead)."""
    return 0.0 if bound is None or math.isinf(bound) else abs(bound - value)


def pareto(points: Sequence[dict[str, Any]], x_label: str, y_label: str,
           frontier: Sequence[tuple[float, float]] = (), key: str = "pareto") -> str:
    """Quality against cost, each with its CI, one labelled point per variant; `frontier`
    (points in x order) is drawn as a dashed line through the non-dominated points."""
    with _figure(key, 5.0, 3.6) as fig:
        ax = fig.subplots()
        if len(frontier) > 1:
            ax.plot([f[0] for f in frontier], [f[1] for f in frontier], "--", color="#999999", linewidth=1,
                    label="Pareto frontier", zorder=0)
        for i, p in enumerate(points):
            x, y = p["x"], p["y"]
            ax.errorbar([x[0]], [y[0]], xerr=[[_whisker(x[0], x[1])], [_whisker(x[0], x[2])]],
                        yerr=[[_whisker(y[0], y[1])], [_whisker(y[0], y[2])]],
                        fmt="o", capsize=3, color=PALETTE[i % len(PALETTE)], label=p["label"])
            if any(math.isinf(b) for b in (*x[1:], *y[1:])):
                ax.annotate("n.e.", (x[0], y[0]), fontsize=7, xytext=(3, 3), textcoords="offset points")
        ax.set_xlabel(x_label)
        ax.set_ylabel(y_label)
        ax.legend(frameon=False, fontsize=8)
        return _svg(fig)


def attention_curves(results: Sequence[Any]) -> str:
    """Prefill time per token against context length (wall and CPU clock), one colour per
    configuration: the mean over repeats with its 95 % CI and the fitted a/n + b + c·n
    (dashed); and the KV cache in use after the prefill (measured, MB)."""
    import numpy as np

    with _figure("attention", 11.0, 3.4) as fig:
        axes = fig.subplots(1, 3)
        for i, r in enumerate(results):
            color = PALETTE[i % len(PALETTE)]
            for ax, fit in ((axes[0], r.wall), (axes[1], r.cpu)):
                ns = [p.n for p in fit.per_token]
                ys = [p.seconds * 1e3 for p in fit.per_token]
                err = [[_whisker(p.seconds * 1e3, p.ci[0] * 1e3) for p in fit.per_token],
                       [_whisker(p.seconds * 1e3, p.ci[1] * 1e3) for p in fit.per_token]]
                ax.errorbar(ns, ys, yerr=err, fmt="o", capsize=3, color=color, label=r.label)
                grid = np.geomspace(min(ns), max(ns), 60)
                ax.plot(grid, [fit.time_at(n) / n * 1e3 for n in grid], "--", color=color, linewidth=1)
            kv = [k for k in r.kv if k.get("state_bytes")]
            axes[2].plot([k["n"] for k in kv], [k["state_bytes"] / 1e6 for k in kv], "o-", color=color, label=r.label)
        lengths = sorted({p.n for r in results for p in r.wall.per_token})
        for ax in axes:  # log2 axis with plain-number ticks (mathtext labels are off in these plots)
            ax.set_xscale("log", base=2)
            ax.set_xticks(lengths, labels=[str(n) for n in lengths])
            ax.minorticks_off()
            ax.set_xlabel("context length n (tokens)")
        for ax, title in ((axes[0], "wall clock"), (axes[1], "process CPU time")):
            ax.set_ylabel("prefill ms per token")
            ax.set_title(f"{title} (dashed: fitted a/n + b + c·n)")
        axes[1].legend(frameon=False, fontsize=7)
        axes[2].set_ylabel("KV cache in use, MB (measured)")
        axes[2].set_title("KV cache after the prefill")
        return _svg(fig)
