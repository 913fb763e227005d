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
    mode = (result.get("judge") or {}).get("verdict")
    section = Section(task=f"{result['runs']['a']} vs {result['runs']['b']}",
                      probe=f"judge ({judge}{', verdicts by log-likelihood' if mode == 'loglik' else ''})")
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
    from llmassay.review.queue import load_queue
    from llmassay.review.store import read_labels, read_scores

    labels = read_labels(root) or {}
    scores = read_scores(root) or {}
    if not labels and not scores:
        return None
    items = load_queue(root)
    section = Section(task=str(root.name), probe="human review")
    reviewers = {r: {"items_labelled": len(labels.get(r, {})), "answers_scored": len(scores.get(r, {}))}
                 for r in sorted(set(labels) | set(scores))}
    section.raw = {"where": str(root), "reviewers": reviewers}  # the figures as numbers (compare --json)
    section.tables.append(TableBlock("labels", ["reviewer", "items labelled", "answers scored"],
                                     [[r, str(c["items_labelled"]), str(c["answers_scored"])]
                                      for r, c in reviewers.items()]))
    if labels:
        _label_agreement(section, labels, items)
    if scores:
        _score_agreement(section, scores, items)
    return section


def _label_agreement(section: Section, labels: dict[str, dict[str, str]], items: list[Any]) -> None:
    from llmassay.review.agreement import agreement

    judge = {it.key: it.judge for it in items if it.judge is not None}
    metric = {it.key: it.metric for it in items if it.metric is not None and it.kind == "single"}
    stats = agreement(labels, judge or metric or None)
    rater = "judge" if judge else "metric"
    pairs = [{**p, "raters": [rater if r == "judge" else r for r in p["raters"]]} for p in stats["cohen_kappa"]]
    section.raw["labels"] = {**stats, "cohen_kappa": pairs}
    section.tables.append(TableBlock(
        f"agreement (Cohen's kappa, 95% bootstrap CI; '{rater}' is the {rater})",
        ["raters", "kappa", "95% CI", "n", "observed agreement"],
        [[" vs ".join(p["raters"]), f"{p['kappa']:.3f}", f"[{p['ci_low']:.3f}, {p['ci_high']:.3f}]",
          str(p["n"]), f"{p['observed_agreement']:.3f}"] for p in pairs]))
    alpha = stats.get("krippendorff_alpha")
    if alpha:
        section.notes.append(f"Krippendorff's alpha (nominal) over {', '.join(alpha['raters'])}: "
                             f"{alpha['alpha']:.3f} on {alpha['items']} items")


def _score_agreement(section: Section, scores: dict[str, dict[str, int]], items: list[Any]) -> None:
    from llmassay.review.agreement import score_agreement
    from llmassay.review.queue import judge_score_map

    stats = score_agreement(scores, judge_score_map(items) or None)
    section.raw["scores"] = stats
    section.tables.append(TableBlock(
        "rubric scores 1-10 (quadratically weighted kappa, 95% bootstrap CI; 'judge' is the judge's --rubric grade)",
        ["raters", "weighted kappa", "95% CI", "n", "mean |difference|"],
        [[" vs ".join(p["raters"]), f"{p['kappa']:.3f}", f"[{p['ci_low']:.3f}, {p['ci_high']:.3f}]", str(p["n"]),
          f"{p['mean_abs_difference']:.2f}"] for p in stats["weighted_kappa"]]))
    for alpha in stats.get("krippendorff_alpha", []):
        section.notes.append(f"Krippendorff's alpha ({alpha['level']}) on rubric scores over "
                             f"{', '.join(alpha['raters'])}: {alpha['alpha']:.3f} on {alpha['items']} answers")


def _places(root: Path) -> list[Path]:
    return [root, *sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))]


def review_section(where: Path) -> Section | None:
    """Human labels and their agreement in `where`, or None when it holds no labels."""
    if not (where / "review.sqlite").exists():
        return None
    try:
        return _review_section(where)
    except ImportError as exc:  # labels exist but the [judge] extra is not installed
        return Section(task=str(where.name), probe="human review", notes=[f"agreement not computed: {exc}"])


def review_sections(root: Path) -> list[Section]:
    """Human-review sections at or directly under `root` (what `llmassay compare` shows)."""
    return [s for s in (review_section(w) for w in _places(root)) if s is not None]


def judge_sections(root: Path) -> list[Section]:
    """Sections for every judgement and label database at or directly under `root`."""
    out: list[Section] = []
    for where in _places(root):
        if (where / RESULTS).exists():
            out.append(_judge_section(where / RESULTS))
        review = review_section(where)
        if review is not None:
            out.append(review)
    return out
