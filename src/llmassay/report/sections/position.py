"""Lost in the middle: accuracy by the gold document's position against the closed-book
baseline, with the quadratic fit's terms, and one browser row per (item, position)."""

from __future__ import annotations

from llmassay.report.section import BrowserRow, Plot, Section, SectionContext
from llmassay.report.sections import generic


def build(ctx: SectionContext) -> Section:
    section = generic.build(ctx)
    plots: list[Plot] = []
    positions = ctx.family("accuracy")
    if positions:
        book = ctx.interval("closed_book")
        plots.append(generic.interval_plot(
            ctx, "curve", "accuracy by position of the document holding the answer", list(positions),
            [f"accuracy[{k}]" for k in positions], "accuracy",
            reference=book[0] if book else None, reference_label="closed book",
        ))
    section.plots = plots + generic.family_plots(ctx, skip=("accuracy",))
    return section


def browser_rows(ctx: SectionContext) -> list[BrowserRow]:
    out = []
    for row in ctx.rows:
        for pos, text in (row.get("generations") or {}).items():
            out.append(BrowserRow(ctx.task, ctx.probe, str(row["id"]), f"gold document at position {pos}; answer: {row.get('answer')}",
                                  str(text), variant=f"position {pos}", correct=bool(row["positions"].get(pos))))
    return out
