"""Stereotype preference: per category, the share of pairs where the more stereotyping
sentence is likelier — frequency-controlled beside whole-sentence — against 0.5, and the
pairs with the strongest preference either way (their words are the pairs' text, escaped
by the report's templates like any model or user text).

Reads the probe's metrics `stereotype_{controlled,whole}`, `margin_*`, `controlled[c]`,
`whole[c]`, its details (`ties`, `no_shared_suffix`, `categories_off_50`) and its rows.
"""

from __future__ import annotations

from typing import Any

from llmassay.report.plots import bars_with_ci
from llmassay.report.section import BrowserRow, Plot, Section, SectionContext, TableBlock
from llmassay.report.sections._safety import ci, excludes, n_of, notes

SCORES = ("controlled", "whole")
EXTREMES = 8  # pairs shown at each end of the controlled margin


def build(ctx: SectionContext) -> Section:
    section = Section(ctx.task, ctx.probe)
    categories = list(dict.fromkeys(k for s in SCORES for k in ctx.family(s)))
    if categories:
        series = {s: [ctx.interval(f"{s}[{c}]") for c in categories] for s in SCORES}
        svg = bars_with_ci(ctx.key("categories"), categories, series, title="stereotype preference by category",
                           axis_label="share of pairs preferring sent_more (95 % CI)", reference=0.5,
                           reference_label="no preference")
        section.plots.append(Plot("stereotype preference by category", svg,
                                  "controlled: only the shared words after the differing span are scored, so a "
                                  "frequent group word cannot look like bias; whole: the sentences compared whole"))
    section.tables.append(category_table(ctx, categories))
    extremes = extremes_table(ctx.rows)
    if extremes.rows:
        section.tables.append(extremes)
    ties = ctx.details.get("ties") or {}
    section.notes = [
        f"ties left out: controlled {ties.get('controlled', 0)}, whole {ties.get('whole', 0)}; pairs whose differing "
        f"span ends the sentence (no controlled score): {ctx.details.get('no_shared_suffix', 0)}",
        *notes(ctx),
    ]
    return section


def category_table(ctx: SectionContext, categories: list[str]) -> TableBlock:
    """One row per category and one for all pairs; 'off 0.5' marks a CI that excludes it."""
    rows = []
    for label, controlled, whole in [("all pairs", "stereotype_controlled", "stereotype_whole"),
                                     *[(c, f"controlled[{c}]", f"whole[{c}]") for c in categories]]:
        mc, mw = ctx.metrics.get(controlled), ctx.metrics.get(whole)
        rows.append([label, n_of(mc), ci(mc), ci(mw), _side(mc)])
    rows.append(["mean margin (nats)", n_of(ctx.metrics.get("margin_controlled")),
                 ci(ctx.metrics.get("margin_controlled"), signed=True), ci(ctx.metrics.get("margin_whole"), signed=True),
                 ""])
    return TableBlock("preference for the more stereotyping sentence (0.5 = none; 95 % CIs, per category uncorrected)",
                      ["category", "n", "controlled", "whole sentence", "controlled vs 0.5"], rows)


def _side(metric: dict[str, Any] | None) -> str:
    if not excludes(metric, 0.5):
        return "—"
    return "prefers the stereotype" if metric["ci_low"] > 0.5 else "prefers the other"  # type: ignore[index]


def extremes_table(rows: list[dict[str, Any]]) -> TableBlock:
    """The pairs with the largest controlled margins for and against the stereotype."""
    scored = [(r["controlled"][0] - r["controlled"][1], r) for r in rows if r.get("controlled")]
    scored.sort(key=lambda x: x[0], reverse=True)
    picked = scored[:EXTREMES] + [x for x in scored[-EXTREMES:] if x not in scored[:EXTREMES]]
    return TableBlock(
        f"strongest preferences (controlled margin, nats; top and bottom {EXTREMES})",
        ["id", "category", "sent_more span", "sent_less span", "controlled margin", "whole margin"],
        [[str(r["id"]), str(r.get("bias_type")), str(r.get("span_more")), str(r.get("span_less")), f"{m:+.2f}",
          f"{r['whole'][0] - r['whole'][1]:+.2f}" if r.get("whole") else "—"] for m, r in picked],
    )


def browser_rows(ctx: SectionContext) -> list[BrowserRow]:
    out = []
    for r in ctx.rows:
        prefers = r.get("prefers_controlled")
        out.append(BrowserRow(
            task=ctx.task, probe=ctx.probe, id=str(r["id"]), variant=str(r.get("bias_type")),
            prompt=f"sent_more span: {r.get('span_more')}\nsent_less span: {r.get('span_less')}",
            output="" if prefers is None else ("prefers sent_more" if prefers else "prefers sent_less"),
            scores=f"controlled {r.get('controlled')}; whole {r.get('whole')}",
        ))
    return out
