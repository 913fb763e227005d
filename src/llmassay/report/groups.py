"""The report's section for lm-eval group scores (`groups` in a results file, written by
`llmassay run --include-path … --tasks <group>`): each group's aggregated metrics with
their intervals and the member tasks they pool (tasks/groups.py)."""

from __future__ import annotations

from typing import Any

from llmassay.report.section import Section, TableBlock


def _cell(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, (int, float)) else "?"


def group_sections(results: dict[str, Any]) -> list[Section]:
    """One section per group with an `aggregate_metric_list`, in the results' order."""
    out = []
    for name, group in (results.get("groups") or {}).items():
        metrics = group.get("metrics") or {}  # results files from before intervals: values only
        rows = [[key, _cell(m.get("value")), f"[{_cell(m.get('ci_low'))}, {_cell(m.get('ci_high'))}]",
                 str(m.get("n", "?")), str(m.get("method", ""))] for key, m in metrics.items()]
        rows += [[key, _cell(v), "not computed", "?", ""] for key, v in (group.get("results") or {}).items()
                 if key not in metrics]
        tasks = ", ".join(map(str, group.get("tasks") or []))
        out.append(Section(task=str(name), probe="lm-eval group",
                           tables=[TableBlock("aggregate_metric_list", ["metric", "value", "95% CI", "n", "interval"], rows)],
                           notes=[f"member tasks: {tasks}"]))
    return out
