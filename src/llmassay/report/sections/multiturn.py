"""Multi-turn: the generic plots (flip, flip_excess, acc_after, belief_* by key), the per-turn
transition tables (right→right, right→wrong, …) and before/after tests from the details, and one
browser row per conversation — the whole conversation as the prompt, the model's last answer as
the output (model output is untrusted text: the templates escape it)."""

from __future__ import annotations

import json
from typing import Any

from llmassay.report.section import BrowserRow, Section, SectionContext
from llmassay.report.sections import generic


def build(ctx: SectionContext) -> Section:
    section = generic.build(ctx)
    notes = section.raw.pop("notes", None)
    if isinstance(notes, list):
        section.notes += [str(n) for n in notes]
    return section


def _pred(row: dict[str, Any], key: str) -> Any:
    if key == "first":
        return row.get("pred_before")
    if key.startswith("belief_"):
        return (row.get("pred_belief") or {}).get(key.removeprefix("belief_"))
    if key == "history":
        return row.get("pred_history")
    return (row.get("pred_after") or {}).get(key)


def browser_rows(ctx: SectionContext) -> list[BrowserRow]:
    out = []
    for row in ctx.rows:
        conversations = row.get("conversations")
        if not isinstance(conversations, dict):
            out += generic.browser_rows(SectionContext(ctx.task, ctx.probe, ctx.metrics, ctx.details, [row]))
            continue
        target, choices = row.get("target"), row.get("choices") or []
        for key, turns in conversations.items():
            if not isinstance(turns, list) or not turns:
                continue
            *asked, last = turns
            pred = _pred(row, key)
            shown = {"pred": pred, "pred_before": row.get("pred_before")}
            if key in (row.get("flip") or {}):
                shown["flip"] = row["flip"][key]
            out.append(BrowserRow(
                task=ctx.task, probe=ctx.probe, id=str(row["id"]),
                prompt="\n\n".join(f"[{role}] {text}" for role, text in asked),
                output=str(last[1]), variant=f"{row.get('mitigation', 'none')} · {key}",
                correct=None if not isinstance(target, int) else pred == target,
                scores=json.dumps(shown, ensure_ascii=False),
                gold=generic.gold_text({"target": target, "choices": choices}),
            ))
    return out
