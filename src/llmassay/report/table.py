"""The terminal summary: one row per (task, probe, metric) with value, 95 % CI and n."""

from __future__ import annotations

from typing import Any

from rich.table import Table

from llmassay.terminal import fitted_tables
from llmassay.types import NOT_ESTIMABLE, bound_text


METRIC_HEADERS = ("value", "95% CI", "n")


def metrics_table(results: dict[str, Any], title: str | None = None, width: int | None = None) -> list[Table]:
    """One row per metric; on a console too narrow for task and probe columns, one table
    per (task, probe) instead, so the metric names keep the width (see terminal.py)."""
    groups: dict[tuple[str, str], list[list[str]]] = {}
    for task, probes in results["results"].items():
        for probe, metrics in probes.items():
            groups[(task, probe)] = [
                [name, f"{m['value']:.4f}", f"[{bound_text(m['ci_low'])}, {bound_text(m['ci_high'])}]", str(m["n"])]
                for name, m in metrics.items()
            ]
    headers = ("task", "probe", "metric", *METRIC_HEADERS)
    rows = [[task, probe, *row] for (task, probe), group in groups.items() for row in group]
    if width is None or _natural_width(headers, rows) <= width:
        return fitted_tables(title, headers, rows, width, keys=3)
    tables = []
    for (task, probe), group in groups.items():
        part = f"{title + ' · ' if title else ''}{task} · {probe}"
        tables += fitted_tables(part, ("metric", *METRIC_HEADERS), group, width, keys=1)
    return tables


def _natural_width(headers: Any, rows: list[list[str]]) -> int:
    """Rich's width for the table with every cell on one line (padding 1, one border each)."""
    return sum(max([len(h)] + [len(r[i]) for r in rows]) + 3 for i, h in enumerate(headers)) + 1


def details_tables(results: dict[str, Any], width: int | None = None) -> list[Table]:
    """Tables a probe left in `details`: each key listed in `details["tables"]` (default
    "variants") holds a list of flat dicts, one row each; a Metric dict shows as value [CI].
    Too wide for `width`, a table's columns are split over parts that repeat its first."""
    tables = []
    for task, probes in results.get("details", {}).items():
        for probe, details in probes.items():
            for key in details.get("tables", ["variants"]):
                rows = details.get(key)
                if not rows:
                    continue
                columns = list(dict.fromkeys(k for row in rows for k in row))
                suffix = f"scoring {details.get('scoring')}" if key == "variants" else key
                cells = [[_cell(row.get(c)) for c in columns] for row in rows]
                tables += fitted_tables(f"{task} · {probe} · {suffix}", [column_label(c) for c in columns], cells,
                                        width, keys=1)
    return tables


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dict) and {"value", "ci_low", "ci_high"} <= value.keys():
        return f"{_cell(value['value'])} [{_bound(value['ci_low'])}, {_bound(value['ci_high'])}]"
    if isinstance(value, float):
        return f"{value:.4f}" if abs(value) >= 1e-3 or value == 0 else f"{value:.1e}"  # -0.05 is no 5e-02
    return str(value)


def _bound(value: Any) -> str:
    """A CI bound: None is a bound the data could not give (types.Metric), not a blank."""
    return NOT_ESTIMABLE if value is None else _cell(value)


def headline(line: dict[str, Any]) -> str:
    """A summary line's figure: `spread 0.250 [0.117, 0.383] n=60`."""
    return (f"{line.get('metric')} {_cell(float(line.get('value', float('nan'))))} "
            f"[{_bound(_number(line.get('ci_low', float('nan'))))}, {_bound(_number(line.get('ci_high', float('nan'))))}] "
            f"n={line.get('n')}")


def _number(value: Any) -> float | None:
    return None if value is None else float(value)


def summary_rows(results: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """The summary card's lines (challenge, task, headline, verdict), from a results file;
    lines that are not objects (a hand-edited file) are skipped."""
    rows = []
    for line in results.get("summary") or []:
        if isinstance(line, dict):
            rows.append((str(line.get("challenge", "")), str(line.get("task", "")), headline(line),
                         str(line.get("verdict", ""))))
    return rows


def token_line(engine: dict[str, Any]) -> str:
    """What the model read and wrote, said so that a cached run does not read as free work
    or as work from nowhere: cached answers cost no tokens, and a backend may evaluate
    tokens outside the counted requests (checks such as batch invariance)."""
    tokens, computed = engine.get("tokens"), engine.get("computed")
    evaluated = engine.get("tokens_evaluated_by_backend")
    if not isinstance(tokens, int) or not isinstance(computed, int):
        return "?"
    cached = engine.get("cache_hits") if isinstance(engine.get("cache_hits"), int) else 0
    if computed == 0:
        line = f"none computed: every answer ({cached:,}) came from the cache"
    else:
        line = f"{tokens:,} in {computed:,} computed requests" + (f" ({cached:,} cached answers cost none)" if cached else "")
    if isinstance(evaluated, int) and evaluated:
        if computed and evaluated <= tokens:
            line += f"; {evaluated:,} evaluated after prefix reuse"
        else:
            line += f"; the backend evaluated {evaluated:,} (checks outside the counted requests included)"
    return line


# Column names whose meaning the bare key hides (terminal and HTML tables alike).
COLUMN_LABELS = {"mcnemar_p": "McNemar p (accuracy vs canonical)"}


def column_label(name: str) -> str:
    return COLUMN_LABELS.get(name, name)
