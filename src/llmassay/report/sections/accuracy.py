"""Accuracy: the score under each MC scoring mode, and how often the modes pick the same
option (they disagree more than users expect, which is why all three are reported)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from llmassay.report.plots import heatmap
from llmassay.report.section import BrowserRow, Plot, Section, SectionContext
from llmassay.report.sections import generic

MODES = (("pred", "loglik"), ("pred_norm", "normalised"), ("pred_gen", "generation"))
SCORE_METRICS = ("acc", "acc_norm", "acc_gen", "gen_parsed", "exact_match")


def build(ctx: SectionContext) -> Section:
    section = generic.build(ctx)
    shown = [m for m in SCORE_METRICS if m in ctx.metrics]
    if shown:
        section.plots.insert(0, generic.interval_plot(ctx, "scores", "accuracy by scoring mode", shown, shown, "share"))
    agreement = mode_agreement(ctx.rows)
    if agreement is not None:
        labels, matrix = agreement
        svg = heatmap(ctx.key("agreement"), matrix, labels, title="MC scoring modes: same option picked")
        caption = "share of items on which two modes pick the same option; the diagonal is the share each mode answers"
        section.plots.append(Plot("scoring-mode agreement", svg, caption))
    return section


def mode_agreement(rows: list[dict[str, Any]]) -> tuple[list[str], list[list[float]]] | None:
    """Pairwise agreement of the modes present in every row (None if fewer than two)."""
    mc = [r for r in rows if "pred" in r]
    modes = [(key, label) for key, label in MODES if mc and all(key in r for r in mc)]
    if len(modes) < 2:
        return None
    matrix = []
    for a, _ in modes:
        line = []
        for b, _ in modes:
            same = [r[a] is not None and r[a] == r[b] for r in mc]
            line.append(sum(same) / len(mc))
        matrix.append(line)
    return [label for _, label in modes], matrix


def browser_rows(ctx: SectionContext) -> list[BrowserRow]:
    rows = generic.browser_rows(ctx)
    return [_with_choices(b, r) if "choices" in r else b for b, r in zip(rows, ctx.rows)]


def _with_choices(base: BrowserRow, row: dict[str, Any]) -> BrowserRow:
    choices = row.get("choices") or []
    lls = row.get("loglikelihoods") or []
    lines = [f"{i}: {c!r}  loglik {ll:.3f}" for i, (c, ll) in enumerate(zip(choices, lls))]
    picks = ", ".join(f"{label} → {row[key]}" for key, label in MODES if key in row)
    lines.append(f"picked: {picks}; target: {row.get('target')}")
    return replace(base, scores="\n".join(lines))
