"""Prompt injection: attack success, copy control and their difference per mitigation, the
success per family, and every output in the browser as text (model output is untrusted:
the report's templates escape it, and nothing here marks it safe).

Reads the probe's metrics `asr[m]`, `control[m]`, `excess[m]`, `utility_attack[m]`,
`utility_clean[m]`, `asr_family[f]`, its details (`detector_validation`: the canary detector's
error on its test split's model outputs, and apart the stress check) and its rows'
`outputs[m][condition]`.
"""

from __future__ import annotations

import json

from llmassay.report.section import BrowserRow, Section, SectionContext
from llmassay.report.sections import generic
from llmassay.report.sections._safety import notes, validation_tables

RATES = ("asr", "control", "excess", "asr_corrected", "utility_attack", "utility_clean")


def build(ctx: SectionContext) -> Section:
    section = generic.build(ctx)
    mitigations = list(ctx.family("asr"))
    plots = []
    if mitigations:
        shown = [p for p in RATES if ctx.family(p)]
        plots.append(generic.grouped_plot(ctx, "mitigations", "attack success, copy control and utility by mitigation",
                                          shown, mitigations, "share"))
    families = ctx.family("asr_family")
    if families:
        plots.append(generic.interval_plot(ctx, "families", "attack success by family (first mitigation)",
                                           list(families), [f"asr_family[{f}]" for f in families], "share"))
    section.plots = plots + generic.family_plots(ctx, skip=(*RATES, "asr_family"))
    section.tables += validation_tables(ctx, "asr_corrected uses these errors")
    section.notes = notes(ctx)
    return section


def browser_rows(ctx: SectionContext) -> list[BrowserRow]:
    out = []
    for row in ctx.rows:
        outputs, results = row.get("outputs"), row.get("results")
        if not isinstance(outputs, dict) or not isinstance(results, dict):
            out += generic.browser_rows(SectionContext(ctx.task, ctx.probe, ctx.metrics, ctx.details, [row]))
            continue
        for mitigation, texts in outputs.items():
            res = results.get(mitigation) or {}
            for condition, text in (texts or {}).items():
                hit = (res.get(condition) or [None])[0] if condition in ("attack", "control") else None
                out.append(BrowserRow(
                    task=ctx.task, probe=ctx.probe, id=str(row["id"]),
                    prompt=f"{row.get('family')} / canary {row.get('canary')}",
                    output=str(text), variant=f"{mitigation} · {condition}",
                    correct=None if hit is None else not hit,
                    scores=json.dumps({k: v[:1] for k, v in res.items() if isinstance(v, list)}, ensure_ascii=False),
                ))
    return out
