"""Needle in a haystack: the length × depth heatmap, accuracy by length against the
effective-length threshold, accuracy by depth, and one browser row per (item, cell)."""

from __future__ import annotations

from llmassay.report.plots import grid_heatmap
from llmassay.report.section import BrowserRow, Plot, Section, SectionContext
from llmassay.report.sections import generic

PLOTTED_FAMILIES = ("accuracy", "accuracy_by_length", "accuracy_by_depth")


def build(ctx: SectionContext) -> Section:
    section = generic.build(ctx)
    plots: list[Plot] = []
    heat = ctx.details.get("heatmap") or {}
    if heat.get("accuracy"):
        svg = grid_heatmap(ctx.key("heatmap"), heat["accuracy"], [str(n) for n in heat["lengths"]],
                           [f"{d:g}" for d in heat["depths"]], title="needle found, by context length x depth",
                           row_label="context length (model tokens)", column_label="needle depth (0 = start, 1 = end)")
        plots.append(Plot("length x depth", svg, "share of items whose answer appears in the reply"))
    lengths = ctx.family("accuracy_by_length")
    if lengths:
        threshold = ctx.details.get("threshold")
        eff = ctx.interval("effective_length")
        title = f"accuracy by context length (effective length {eff[0]:.0f})" if eff else "accuracy by context length"
        plots.append(generic.interval_plot(
            ctx, "by-length", title,
            list(lengths), [f"accuracy_by_length[{k}]" for k in lengths], "accuracy",
            reference=threshold, reference_label="0.85 x accuracy at the shortest length",
        ))
    depths = ctx.family("accuracy_by_depth")
    if depths:
        plots.append(generic.interval_plot(ctx, "by-depth", "accuracy by needle depth", list(depths),
                                           [f"accuracy_by_depth[{k}]" for k in depths], "accuracy"))
    section.plots = plots + generic.family_plots(ctx, skip=PLOTTED_FAMILIES)
    return section


def browser_rows(ctx: SectionContext) -> list[BrowserRow]:
    out = []
    for row in ctx.rows:
        for cell, entry in (row.get("cells") or {}).items():
            out.append(BrowserRow(ctx.task, ctx.probe, str(row["id"]), f"[{cell}] answer: {row.get('answer')}",
                                  str(entry.get("generation", "")), variant=cell, correct=bool(entry.get("found")),
                                  scores=f"prompt tokens {entry.get('prompt_tokens')}, prefill {entry.get('prefill_tokens')}"))
    return out
