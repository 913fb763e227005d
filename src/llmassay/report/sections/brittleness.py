"""Brittleness: accuracy per prompt variant, flip rates, per-item sensitivity and
option-position bias, and one browser row per (item, variant) with the exact prompt."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from llmassay.probes.brittleness import CANONICAL, disagreement, measured_preds
from llmassay.report.plots import histogram
from llmassay.report.section import BrowserRow, Plot, Section, SectionContext
from llmassay.report.sections import generic

PLOTTED_FAMILIES = ("acc", "flip_rate", "position_share")


def build(ctx: SectionContext) -> Section:
    section = generic.build(ctx)
    plots: list[Plot] = []
    accs = ctx.family("acc")
    if accs:
        canon = ctx.interval(f"acc[{CANONICAL}]")
        plots.append(generic.interval_plot(
            ctx, "acc", "accuracy per prompt variant", list(accs), [f"acc[{v}]" for v in accs], "accuracy",
            reference=canon[0] if canon else None, reference_label="canonical",
        ))
    flips = ctx.family("flip_rate")
    if flips:
        plots.append(generic.interval_plot(
            ctx, "flip", "flip rate vs the canonical prompt", list(flips), [f"flip_rate[{v}]" for v in flips], "flip rate",
        ))
    sensitivity = item_sensitivity(ctx.rows)
    if sensitivity:
        n_variants = max(len(measured_preds(r)) for r in ctx.rows)
        bins = [(i - 0.5) / n_variants for i in range(n_variants + 1)]
        svg = histogram(ctx.key("sensitivity"), list(sensitivity.values()), bins,
                        title="per-item sensitivity", axis_label="share of variants disagreeing with the item's majority answer")
        plots.append(Plot("per-item sensitivity", svg, "0 = the item gets the same answer under every prompt"))
    slots = ctx.family("position_share")
    if slots:
        plots.append(generic.interval_plot(
            ctx, "position", "option-position bias (picks per slot over rotations)", [f"slot {k}" for k in slots],
            [f"position_share[{k}]" for k in slots], "share of picks", reference=1 / len(slots), reference_label="chance",
        ))
    section.plots = plots + generic.family_plots(ctx, skip=PLOTTED_FAMILIES)
    return section


def item_sensitivity(rows: list[dict[str, Any]]) -> dict[str, float]:
    """id → share of the item's variants (controls left out, as in `sensitivity_mean`)
    that disagree with its majority answer."""
    return {str(r["id"]): disagreement(measured_preds(r)) for r in rows if r.get("variants")}


def browser_rows(ctx: SectionContext) -> list[BrowserRow]:
    sensitivity = item_sensitivity(ctx.rows)
    out = []
    for row in ctx.rows:
        for name, v in (row.get("variants") or {}).items():
            lines = [f"{i}: {c!r}  loglik {ll:.3f}" for i, (c, ll) in enumerate(zip(v.get("choices", []), v.get("loglikelihoods", [])))]
            lines.append(f"picked slot {v.get('pred_slot')} = option {v.get('pred')}; target option {row.get('target')}")
            base = BrowserRow(ctx.task, ctx.probe, str(row["id"]), str(v.get("prompt", "")), picked(v))
            out.append(replace(
                base, variant=name, correct=v.get("correct"), brittle=sensitivity.get(str(row["id"]), 0.0) > 0,
                scores="\n".join(lines), gold=expected(v, row.get("target")),
            ))
    return out


def picked(variant: dict[str, Any]) -> str:
    """What the model answered under one variant: its generation, or the label it scored
    highest, with the slot and the original option it maps back to."""
    said = f"{variant['generation']!r} → " if isinstance(variant.get("generation"), str) else ""
    slot, choices, pred = variant.get("pred_slot"), variant.get("choices") or [], variant.get("pred")
    if pred is None:
        return f"{said}no option recognised"
    label = f"{str(choices[slot]).strip()!r} (slot {slot}) = " if isinstance(slot, int) and 0 <= slot < len(choices) else ""
    return f"{said}picked {label}option {pred}"


def expected(variant: dict[str, Any], target: Any) -> str:
    """The right label under this variant's option order, and the option it stands for."""
    order, choices = variant.get("order") or [], variant.get("choices") or []
    if target in order and order.index(target) < len(choices):
        return f"{str(choices[order.index(target)]).strip()!r} = option {target}"
    return "" if target is None else f"option {target}"
