"""Structured output: JSON validity by mode (strict, extract, repair, retry, constrained),
its cost, validity per instruction wording, and one browser row per (item, mode).

Reads the probe's metric names `parse_valid[mode]`, `schema_valid[mode]`,
`field_acc[mode]`, `tokens[mode]`, `latency_s[mode]` and `instruction_*_valid[wording]`, and its rows'
`modes` / `output` fields; anything else it reports goes through the generic view.
"""

from __future__ import annotations

import json
from typing import Any

from llmassay.report.section import BrowserRow, Section, SectionContext
from llmassay.report.sections import generic

VALIDITY = ("parse_valid", "schema_valid", "field_acc")
INSTRUCTION = ("instruction_parse_valid", "instruction_schema_valid")
COST = (("tokens", "output tokens per item by mode"), ("latency_s", "seconds per item by mode"))
PLOTTED = (*VALIDITY, *(family for family, _ in COST), *INSTRUCTION)


def build(ctx: SectionContext) -> Section:
    section = generic.build(ctx)
    plots = []
    modes = list(dict.fromkeys(k for p in VALIDITY for k in ctx.family(p)))
    if modes:
        shown = [p for p in VALIDITY if ctx.family(p)]
        plots.append(generic.grouped_plot(ctx, "validity", "JSON validity by mode", shown, modes, "share"))
    for family, title in COST:
        by_mode = ctx.family(family)
        if by_mode:
            plots.append(generic.interval_plot(ctx, family, title, list(by_mode), [f"{family}[{m}]" for m in by_mode], family))
    wordings = list(dict.fromkeys(k for p in INSTRUCTION for k in ctx.family(p)))
    if len(wordings) > 1:
        shown = [p for p in INSTRUCTION if ctx.family(p)]
        plots.append(generic.grouped_plot(ctx, "wordings", "validity per JSON-instruction wording (0 = canonical)",
                                          shown, wordings, "share"))
    section.plots = plots + generic.family_plots(ctx, skip=PLOTTED)
    return section


def browser_rows(ctx: SectionContext) -> list[BrowserRow]:
    out = []
    for row in ctx.rows:
        modes = row.get("modes")
        if not isinstance(modes, dict) or not modes:
            out += generic.browser_rows(SectionContext(ctx.task, ctx.probe, ctx.metrics, ctx.details, [row]))
            continue
        free = (row.get("output") or {}).get("text", "")
        for mode, entry in modes.items():
            if not isinstance(entry, dict):
                continue
            out.append(BrowserRow(
                task=ctx.task, probe=ctx.probe, id=str(row["id"]), prompt=str(row.get("prompt", "")),
                output=_mode_output(mode, entry, free), variant=mode,
                correct=entry.get("field_acc") == 1.0 if "field_acc" in entry else None,
                json_valid=entry.get("parse_valid") if isinstance(entry.get("parse_valid"), bool) else None,
                scores=_scores(entry, row.get("gold")),
            ))
    return out


def _mode_output(mode: str, entry: dict[str, Any], free: str) -> str:
    attempts = entry.get("attempts")
    if isinstance(attempts, list) and len(attempts) > 1:
        return "\n".join(f"--- attempt {i} ---\n{a}" for i, a in enumerate(attempts, 1))
    if isinstance(entry.get("text"), str):
        return entry["text"]  # constrained decoding: its own generation
    return str(free)


def _scores(entry: dict[str, Any], gold: Any) -> str:
    keys = ("schema_valid", "field_acc", "parse_error", "schema_errors", "classes", "retries", "tokens", "relaxed")
    lines = [f"{k}: {json.dumps(entry[k], ensure_ascii=False)}" for k in keys if k in entry and (k != "relaxed" or entry[k])]
    lines.append("parsed: " + json.dumps(entry.get("parsed"), ensure_ascii=False))
    lines.append("gold: " + json.dumps(gold, ensure_ascii=False))
    return "\n".join(lines)
