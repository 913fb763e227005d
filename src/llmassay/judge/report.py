"""The report's judge and human-review sections: found next to a run (its directory or a
direct subdirectory holding `judge_results.json` or `review.sqlite`), shown as tables.
Every figure of an uncalibrated or uninformative judge carries that warning."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from llmassay.report.section import Section, TableBlock

RESULTS = "judge_results.json"


def _fmt(m: dict[str, Any]) -> list[str]:
    return [f"{m['value']:.3f}", f"[{m['ci_low']:.3f}, {m['ci_high']:.3f}]", str(m["n"])]


def _judge_section(path: Path) -> Section:
    result = json.loads(path.read_text(encoding="utf-8"))
    warning = result.get("warning") or ""
    judge = (result.get("judge") or {}).get("judge", "?")
    section = Section(task=f"{result['runs']['a']} vs {result['runs']['b']}", probe=f"judge ({judge})")
    cal = result.get("calibration") or {}
    if cal.get("metrics"):
        section.tables.append(TableBlock(f"calibration on {cal.get('task')} (planted truth)",
                                         ["metric", "value", "95% CI", "n"],
                                         [[k, *_fmt(m)] for k, m in cal["metrics"].items()]))
    section.tables.append(TableBlock("pairwise, both orders (A = first run)", ["metric", "value", "95% CI", "n", "note"],
                                     [[k, *_fmt(m), warning] for k, m in (result.get("metrics") or {}).items()]))
    for side in ("a", "b"):
        grades = (result.get("grading") or {}).get(side)
        if grades:
            section.tables.append(TableBlock(f"rubric grade of {side.upper()}", ["metric", "value", "95% CI", "n", "note"],
                                             [[k, *_fmt(m), warning] for k, m in grades.items()]))
    if warning:
        section.notes.append(warning)
    return section


def _review_section(root: Path) -> Section | None:
    from llmassay.review.agreement import agreement
    from llmassay.review.queue import load_queue
    from llmassay.review.store import read_labels

    labels = read_labels(root)
    if not labels:
        return None
    items = load_queue(root)
    judge = {it.key: it.judge for it in items if it.judge is not None}
    metric = {it.key: it.metric for it in items if it.metric is not None and it.kind == "single"}
    stats = agreement(labels, judge or metric or None)
    rater = "judge" if judge else "metric"
    section = Section(task=str(root.name), probe="human review")
    section.tables.append(TableBlock("labels", ["reviewer", "items labelled"],
                                     [[r, str(len(v))] for r, v in sorted(labels.items())]))
    section.tables.append(TableBlock(
        f"agreement (Cohen's kappa, 95% bootstrap CI; '{rater}' is the {rater})",
        ["raters", "kappa", "95% CI", "n", "observed agreement"],
        [[" vs ".join(p["raters"]).replace("judge", rater), f"{p['kappa']:.3f}", f"[{p['ci_low']:.3f}, {p['ci_high']:.3f}]",
          str(p["n"]), f"{p['observed_agreement']:.3f}"] for p in stats["cohen_kappa"]]))
    alpha = stats.get("krippendorff_alpha")
    if alpha:
        section.notes.append(f"Krippendorff's alpha (nominal) over {', '.join(alpha['raters'])}: "
                             f"{alpha['alpha']:.3f} on {alpha['items']} items")
    return section


def judge_sections(root: Path) -> list[Section]:
    """Sections for every judgement and label database at or directly under `root`."""
    out: list[Section] = []
    for where in [root, *sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))]:
        if (where / RESULTS).exists():
            out.append(_judge_section(where / RESULTS))
        try:
            review = _review_section(where) if (where / "review.sqlite").exists() else None
        except ImportError as exc:  # labels exist but the [judge] extra is not installed
            review = Section(task=str(where.name), probe="human review", notes=[f"agreement not computed: {exc}"])
        if review is not None:
            out.append(review)
    return out
