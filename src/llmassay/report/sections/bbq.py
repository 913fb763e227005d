"""BBQ-style QA: accuracy beside s_DIS and s_AMB, with the warning that bias scores of a
model near chance are noise, the accuracy per context condition against chance, and
per-category counts.

Reads the probe's metrics `acc`, `acc[ambig]`, `acc[disambig]`, `s_dis`, `s_amb`,
`unknown_rate`, its details `chance` and `near_chance`, and its rows (`category`,
`context_condition`, `correct`, `biased`, `unknown`).
"""

from __future__ import annotations

from llmassay.metrics import proportion
from llmassay.report.plots import bars_with_ci
from llmassay.report.section import Plot, Section, SectionContext, TableBlock
from llmassay.report.sections._safety import ci, n_of, notes

SCORES = (("acc", "accuracy"), ("acc[ambig]", "accuracy, ambiguous contexts"),
          ("acc[disambig]", "accuracy, disambiguated contexts"), ("s_dis", "s_DIS (disambiguated)"),
          ("s_amb", "s_AMB (ambiguous)"), ("unknown_rate", "answers 'unknown'"))


def warning(ctx: SectionContext) -> str | None:
    """The line a reader must see before the bias scores, when accuracy is near chance."""
    if not ctx.details.get("near_chance"):
        return None
    acc, chance = ctx.metrics.get("acc") or {}, ctx.details.get("chance")
    return (f"WARNING: accuracy {ci(acc)} is near chance ({chance:.2f}; its CI reaches chance + 0.10): the model "
            "answers close to random, so s_DIS and s_AMB are noise here and say nothing about bias.")


def build(ctx: SectionContext) -> Section:
    section = Section(ctx.task, ctx.probe)
    chance = ctx.details.get("chance")
    conditions = [k for k in ("ambig", "disambig") if ctx.interval(f"acc[{k}]")]
    names = ["acc"] + [f"acc[{k}]" for k in conditions]
    svg = bars_with_ci(ctx.key("accuracy"), ["all", *conditions], {"accuracy": [ctx.interval(n) for n in names]},
                       title="accuracy by context condition", axis_label="accuracy (95 % CI)",
                       reference=chance if isinstance(chance, (int, float)) else None, reference_label="chance")
    section.plots.append(Plot("accuracy by context condition", svg))
    scores = [k for k in ("s_dis", "s_amb") if ctx.interval(k)]
    if scores:
        svg = bars_with_ci(ctx.key("bias"), scores, {"bias score": [ctx.interval(k) for k in scores]},
                           title="bias scores (0 = none, +1 = always the stereotype)", axis_label="score (95 % CI)",
                           limits=(-1.0, 1.0), reference=0.0)
        section.plots.append(Plot("bias scores", svg, warning(ctx) or "accuracy is above chance: the scores are readable"))
    verdict = warning(ctx) or "accuracy is above chance + 0.10: the bias scores are readable"
    section.tables.append(TableBlock(
        f"accuracy beside the bias scores (chance = {chance:.2f})" if isinstance(chance, (int, float)) else "scores",
        ["measure", "value [95 % CI]", "n"],
        [[label, ci(ctx.metrics.get(k), signed=k.startswith("s_")), n_of(ctx.metrics.get(k))]
         for k, label in SCORES if k in ctx.metrics] + [["verdict", verdict, ""]],
    ))
    section.tables.append(category_table(ctx))
    section.notes = notes(ctx)
    return section


def category_table(ctx: SectionContext) -> TableBlock:
    """Per category: accuracy in each condition and the share of biased answers (Wilson CIs)."""
    rows = []
    for category in sorted({str(r.get("category")) for r in ctx.rows}):
        part = [r for r in ctx.rows if str(r.get("category")) == category]
        cells = []
        for condition in ("ambig", "disambig"):
            sub = [bool(r["correct"]) for r in part if r.get("context_condition") == condition]
            cells.append(ci(proportion(sub).as_dict()) if sub else "—")
        rows.append([category, str(len(part)), *cells, ci(proportion([bool(r["biased"]) for r in part]).as_dict())])
    return TableBlock("per category", ["category", "items", "accuracy, ambiguous", "accuracy, disambiguated",
                                       "biased answers"], rows)
