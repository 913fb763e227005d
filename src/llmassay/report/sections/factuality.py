"""Factuality: answer accuracy and fact precision per retrieval mode, retrieval quality apart
from the reader's, and every atomic fact coloured by its verdict with its evidence passage
on hover and on click (all model text goes through Jinja's autoescape).

Reads the probe's metrics `correct[mode]`, `exact_match[mode]`, `contradicted[mode]`,
`abstention[mode]`, `recall_at_k[mode]`, `mrr[mode]`, `fact_precision/<path>[mode]`, …, and
its rows' `modes` entries.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from llmassay.report.section import BrowserRow, Section, SectionContext, TableBlock
from llmassay.report.sections import generic

SHORT = ("exact_match", "correct", "contradicted", "abstention")
RETRIEVAL = ("recall_at_k", "mrr", "correct_when_retrieved", "correct_when_missed")
PROFILE = ("fact_precision", "unverified", "contradicted_rate", "f1_at_k", "abstention")
FACTS_SHOWN = 300  # table rows; the browser has every answer


@dataclass(frozen=True)
class VerdictCell:
    """A table cell the report colours by `verdict`, with `evidence` on hover and click."""

    text: str
    verdict: str
    evidence: str

    def __str__(self) -> str:  # plain-text readers of a table (terminal, JSON) see the text
        return f"{self.text} ({self.verdict})"


def build(ctx: SectionContext) -> Section:
    section = generic.build(ctx)
    plots = []
    modes = list(dict.fromkeys(k for p in (*SHORT, *RETRIEVAL) for k in ctx.family(p)))
    shown = [p for p in SHORT if ctx.family(p)]
    if shown:
        plots.append(generic.grouped_plot(ctx, "short", "short questions by rag mode", shown, modes, "share"))
    shown = [p for p in RETRIEVAL if ctx.family(p)]
    if shown:
        keys = list(dict.fromkeys(k for p in shown for k in ctx.family(p)))
        plots.append(generic.grouped_plot(ctx, "retrieval", "retriever (recall@k, MRR) vs reader", shown, keys, "share"))
    for path in ("structured", "free"):
        shown = [f"{p}/{path}" for p in PROFILE if ctx.family(f"{p}/{path}")]
        if shown:
            keys = list(dict.fromkeys(k for p in shown for k in ctx.family(p)))
            plots.append(generic.grouped_plot(ctx, f"profile-{path}", f"profile facts, {path} path, by rag mode",
                                              shown, keys, "share"))
    section.plots = plots
    facts = fact_table(ctx)
    if facts.rows:
        section.tables.append(facts)
    return section


def fact_table(ctx: SectionContext) -> TableBlock:
    """Every atomic fact (up to FACTS_SHOWN) with its verdict and evidence passage id."""
    rows: list[list[Any]] = []
    for row in ctx.rows:
        for mode, entry in (row.get("modes") or {}).items():
            if not isinstance(entry, dict):
                continue
            if "answer" in entry:
                rows.append([str(row["id"]), mode, "short", VerdictCell(str(entry["answer"]), str(entry.get("verdict")),
                                                                        str(entry.get("evidence") or "—"))])
            for path in ("structured", "free"):
                for fact in (entry.get(path) or {}).get("facts", []):
                    evidence = str(fact.get("evidence") or "—")
                    if fact.get("judge_answer") is not None:
                        evidence = f"judge {fact.get('judge', 'self')} said: {fact['judge_answer']}"
                    rows.append([str(row["id"]), mode, path, VerdictCell(
                        str(fact.get("text") or fact.get("value")), str(fact.get("verdict")), evidence)])
    title = f"atomic facts by verdict (first {FACTS_SHOWN} of {len(rows)}; hover or click for the evidence)"
    return TableBlock(title, ["id", "rag", "path", "fact"], rows[:FACTS_SHOWN])


def browser_rows(ctx: SectionContext) -> list[BrowserRow]:
    out = []
    for row in ctx.rows:
        for mode, entry in (row.get("modes") or {}).items():
            if not isinstance(entry, dict):
                continue
            if "answer" in entry:
                out.append(BrowserRow(ctx.task, ctx.probe, str(row["id"]), "", str(entry["answer"]), mode,
                                      correct=bool(entry.get("correct")), scores=_scores(entry)))
            for path in ("structured", "free"):
                sub = entry.get(path)
                if isinstance(sub, dict):
                    counts = sub.get("counts") or {}
                    out.append(BrowserRow(ctx.task, ctx.probe, str(row["id"]), "", str(sub.get("text", "")),
                                          f"{mode}/{path}", correct=not counts.get("contradicted"),
                                          json_valid=sub.get("parsed") if path == "structured" else None,
                                          scores="\n".join(f"[{f.get('verdict')}] {f.get('text')} ← {f.get('evidence')}"
                                                           for f in sub.get("facts", []))))
    return out


def _scores(entry: dict[str, Any]) -> str:
    keys = ("verdict", "evidence", "exact_match", "correct", "abstained", "rank", "retrieved", "copied",
            "follows_edit", "follows_original")
    return "\n".join(f"{k}: {json.dumps(entry[k])}" for k in keys if k in entry)
