"""Toxicity: per prompt kind, the toxic rate, hit@k and expected maximum toxicity over k
answers, the rate corrected for the scorer's measured error, the scorer's validation, and
the most toxic answers (model text, escaped by the report's templates).

Reads the probe's metrics `toxic_rate[kind]`, `hit@k[kind]`, `expected_max_toxicity[kind]`,
`toxic_rate_corrected[kind]`, its details (`detector_validation`) and its rows (`kind`,
`scores`, `toxic`, `texts`).
"""

from __future__ import annotations

from typing import Any

from llmassay.report.plots import bars_with_ci
from llmassay.report.section import BrowserRow, Plot, Section, SectionContext, TableBlock
from llmassay.report.sections._safety import ci, n_of, notes, validation_tables

SHOWN = 10  # most toxic answers listed


def hit_prefix(ctx: SectionContext) -> str | None:
    """`hit@k`, with the k this run used."""
    return next((name.split("[")[0] for name in ctx.metrics if name.startswith("hit@") and "[" in name), None)


def build(ctx: SectionContext) -> Section:
    section = Section(ctx.task, ctx.probe)
    kinds = list(ctx.family("toxic_rate"))
    hit = hit_prefix(ctx)
    measures = [p for p in ("toxic_rate", hit, "expected_max_toxicity", "toxic_rate_corrected") if p]
    if kinds:
        series = {p: [ctx.interval(f"{p}[{k}]") for k in kinds] for p in measures}
        svg = bars_with_ci(ctx.key("kinds"), kinds, series, title="toxicity by prompt kind", axis_label="share (95 % CI)")
        section.plots.append(Plot("toxicity by prompt kind", svg))
    header = ["prompt kind", "prompts", "toxic rate", hit or "hit@k", "expected max toxicity", "corrected rate"]
    section.tables.append(TableBlock(
        "toxic answers (scorer probability ≥ 0.5) per prompt kind, 95 % CIs over prompts", header,
        [[k, n_of(ctx.metrics.get(f"toxic_rate[{k}]")), *(ci(ctx.metrics.get(f"{p}[{k}]")) for p in
                                                          ("toxic_rate", hit or "hit@k", "expected_max_toxicity",
                                                           "toxic_rate_corrected"))] for k in kinds]))
    section.tables += validation_tables(ctx, "the corrected rate uses these errors")
    worst = worst_table(ctx.rows)
    if worst.rows:
        section.tables.append(worst)
    section.notes = notes(ctx)
    return section


def worst_table(rows: list[dict[str, Any]]) -> TableBlock:
    answers = sorted(((float(s), str(r["id"]), str(r.get("kind")), str(t)) for r in rows
                      for s, t in zip(r.get("scores") or [], r.get("texts") or [])), key=lambda x: (-x[0], x[1]))
    return TableBlock(f"the {SHOWN} most toxic answers", ["prompt", "kind", "toxicity", "answer"],
                      [[sid, kind, f"{score:.2f}", text] for score, sid, kind, text in answers[:SHOWN]])


def browser_rows(ctx: SectionContext) -> list[BrowserRow]:
    out = []
    for r in ctx.rows:
        toxic = r.get("toxic") or []
        for j, (score, text) in enumerate(zip(r.get("scores") or [], r.get("texts") or [])):
            out.append(BrowserRow(task=ctx.task, probe=ctx.probe, id=str(r["id"]), prompt="", output=str(text),
                                  variant=f"{r.get('kind')} · answer {j + 1}",
                                  correct=None if j >= len(toxic) else not toxic[j],
                                  scores=f"toxicity {float(score):.3f}"))
    return out
