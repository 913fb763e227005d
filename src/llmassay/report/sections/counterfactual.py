"""Counterfactual fairness: every attribute gap with its Bonferroni-level CI and its exact
paired p-value, the gaps the probe flagged (sign-flip test, Holm), and the generations behind
the sentiment scores (model text, escaped by the report's templates).

Reads the probe's metrics `gap_<measure>[<attribute>:<contrast>]`, its details
(`comparisons`, `ci_level`, `flagged`, `p_values`, `min_attainable_p`) and its rows
(`scores`, `first`, `texts`).
"""

from __future__ import annotations

from typing import Any

from llmassay.report.plots import bars_with_ci
from llmassay.report.section import BrowserRow, Plot, Section, SectionContext, TableBlock
from llmassay.report.sections._safety import ci, n_of, notes, validation_tables

MEASURES = {"sentiment": "generation sentiment (VADER)", "p_first": "P(first choice)",
            "picks_first": "first choice picked"}
SHOWN = 6  # generations at each end of the sentiment scale


def build(ctx: SectionContext) -> Section:
    section = Section(ctx.task, ctx.probe)
    level, m = ctx.details.get("ci_level"), ctx.details.get("comparisons")
    flagged = {f.get("comparison") for f in ctx.details.get("flagged") or [] if isinstance(f, dict)}
    level_text = f"{level:.4f} (Bonferroni, {m} comparisons)" if isinstance(level, (int, float)) else "as given"
    for measure, label in MEASURES.items():
        gaps = ctx.family(f"gap_{measure}")
        if not gaps:
            continue
        names = [f"gap_{measure}[{k}]" for k in gaps]
        svg = bars_with_ci(ctx.key(f"gap-{measure}"), list(gaps), {"gap": [ctx.interval(n) for n in names]},
                           title=f"{label}: gap between groups", axis_label=f"gap (CI at {level_text})",
                           limits=None, reference=0.0)
        section.plots.append(Plot(f"{label} gaps", svg))
    pvalues = ctx.details.get("p_values") or {}
    rows = [[name, ci(metric, signed=True), n_of(metric),
             f"{pvalues[name]:.2g}" if isinstance(pvalues.get(name), (int, float)) else "—",
             "FLAGGED" if name in flagged else "—"]
            for name, metric in ctx.metrics.items() if name.startswith("gap_")]
    section.tables.append(TableBlock(f"gaps, group − other group(s), paired over templates; CIs at {level_text}",
                                     ["comparison", "gap [CI]", "templates", "exact p (sign-flip)",
                                      "flagged (Holm)"], rows))
    extremes = generations_table(ctx.rows)
    if extremes.rows:
        section.tables.append(extremes)
    section.tables += validation_tables(ctx, "the gaps are not corrected for them: "
                                      "read a sentiment gap with the scorer's errors in mind")
    section.notes = [f"flagged: {', '.join(sorted(flagged))}" if flagged else
                     "flagged: none (no gap's exact paired test passes Holm's correction)", *few_templates(ctx), *notes(ctx)]
    return section


def few_templates(ctx: SectionContext) -> list[str]:
    """Why nothing can be flagged when the templates are too few: with n templates the exact
    sign-flip test's smallest two-sided p is 2 · 0.5^n, which may sit above Holm's first
    level 0.05/m; a bootstrap CI over so few templates still excludes 0 when all agree."""
    m = ctx.details.get("comparisons")
    ns = [int(x["n"]) for k, x in ctx.metrics.items() if k.startswith("gap_") and isinstance(x.get("n"), int)]
    if not isinstance(m, int) or not ns:
        return []
    n = min(ns)
    floor = ctx.details.get("min_attainable_p", 2 * 0.5 ** n)
    if floor < 0.05 / m:
        return []
    return [f"caution: with {n} templates the exact paired test cannot go below p = {floor:.3f}, above the "
            f"corrected level 0.05/{m} = {0.05 / m:.4f}, so no gap can be flagged however large; a bootstrap "
            "CI over so few templates excludes 0 whenever they all agree in sign. Add templates."]


def generations_table(rows: list[dict[str, Any]]) -> TableBlock:
    """The most negative and most positive generations, with the value that filled the slot."""
    scored = sorted(((float(r["scores"][v]), str(r["id"]), v, str(text)) for r in rows
                     for v, text in (r.get("texts") or {}).items() if v in (r.get("scores") or {})),
                    key=lambda x: (x[0], x[1], x[2]))
    picked = scored[:SHOWN] + scored[max(SHOWN, len(scored) - SHOWN):]
    return TableBlock(f"generations at the ends of the sentiment scale ({SHOWN} each)",
                      ["template", "slot filled with", "sentiment", "generation"],
                      [[sid, value, f"{score:+.2f}", text] for score, sid, value, text in picked])


def browser_rows(ctx: SectionContext) -> list[BrowserRow]:
    out = []
    for r in ctx.rows:
        texts, scores, first = r.get("texts") or {}, r.get("scores") or {}, r.get("first") or {}
        for value, score in scores.items():
            if value in texts:
                output, shown = str(texts[value]), f"sentiment {score:+.3f}"
            else:
                output, shown = f"P(first choice) = {score:.3f}", f"first choice picked: {first.get(value)}"
            out.append(BrowserRow(task=ctx.task, probe=ctx.probe, id=str(r["id"]), prompt=f"{{X}} = {value}",
                                  output=output, variant=value, scores=shown))
    return out
