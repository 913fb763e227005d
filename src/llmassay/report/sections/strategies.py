"""Prompting strategies: the cost–accuracy plane (tokens spent vs accuracy, 95 % CIs on
both axes) and the per-strategy table with McNemar's test against zero-shot.

Reads the probe's `acc[strategy]` and `tokens[strategy]` metrics and its `strategies`
details; everything else goes through the generic view.
"""

from __future__ import annotations

from typing import Any

from llmassay.report.plots import PALETTE, _figure, _svg
from llmassay.report.section import Plot, Section, SectionContext, TableBlock
from llmassay.report.sections import generic

MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "h")  # with the colours, nine strategies stay apart
STRATEGY_EXTRA_COLORS = ("#17becf", "#e377c2", "#7f7f7f")  # past the report palette's six


def build(ctx: SectionContext) -> Section:
    section = generic.build(ctx)
    acc, tokens = ctx.family("acc"), ctx.family("tokens")
    names = [n for n in acc if n in tokens]
    if names:
        section.plots.insert(0, Plot("accuracy vs tokens spent", cost_accuracy_svg(ctx.key("cost-accuracy"), [
            (n, ctx.interval(f"acc[{n}]"), ctx.interval(f"tokens[{n}]")) for n in names])))
    table = ctx.details.get("strategies")
    if isinstance(table, list) and table:
        rows = [[str(e.get("strategy")), _ci(e.get("acc"), e.get("acc_ci")), _ci(e.get("tokens"), e.get("tokens_ci"), ".0f"),
                 f"{e.get('cost_ratio', float('nan')):.1f}×", generic.cell(e.get("mcnemar_p", "")),
                 generic.cell(e.get("holm_p", "")), str(e.get("verdict", "baseline"))] for e in table]
        section.tables.insert(0, TableBlock("strategies against zero-shot", [
            "strategy", "accuracy (95 % CI)", "tokens per item (95 % CI)", "cost", "McNemar p", "Holm-adjusted p", "verdict"], rows))
    return section


def _ci(value: object, ci: object, fmt: str = ".2f") -> str:
    if not isinstance(value, (int, float)):
        return ""
    if isinstance(ci, list) and len(ci) == 2:
        return f"{value:{fmt}} [{ci[0]:{fmt}}, {ci[1]:{fmt}}]"
    return f"{value:{fmt}}"


def cost_accuracy_svg(key: str, points: list[tuple[str, tuple[float, float, float] | None, tuple[float, float, float] | None]]) -> str:
    """One point per strategy: x = mean tokens per item, y = accuracy, both with CIs."""
    with _figure(key, 6.0, 3.6) as fig:
        draw_cost_accuracy(fig.subplots(), points)
        return _svg(fig)


def draw_cost_accuracy(ax: Any, points: list[tuple[str, tuple[float, float, float] | None,
                                                   tuple[float, float, float] | None]], legend: bool = True) -> None:
    """The plane on one matplotlib axis (also drawn by `llmassay tokens strategies`): colour
    and marker follow the strategy's position, so panels of one grid agree."""
    from matplotlib.ticker import FuncFormatter, NullFormatter

    colors = [*PALETTE, *STRATEGY_EXTRA_COLORS]
    for i, (name, acc, tok) in enumerate(points):
        if acc is None or tok is None:
            continue
        color = colors[i % len(colors)]
        ax.errorbar([tok[0]], [acc[0]], xerr=[[tok[0] - tok[1]], [tok[2] - tok[0]]],
                    yerr=[[acc[0] - acc[1]], [acc[2] - acc[0]]], fmt=MARKERS[i % len(MARKERS)], color=color,
                    capsize=3, label=name)
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))  # plain text: the style turns off mathtext
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("tokens spent per item, prompt + generated (95 % CI, log scale)")
    ax.set_ylabel("accuracy (95 % CI)")
    ax.set_ylim(-0.02, 1.02)
    if legend:
        ax.legend(fontsize=7, ncols=2)
