"""The terminal summary: one row per (task, probe, metric) with value, 95 % CI and n."""

from __future__ import annotations

from typing import Any

from rich.table import Table
from rich.text import Text


def metrics_table(results: dict[str, Any], title: str | None = None) -> Table:
    table = Table(title=title)
    for column in ("task", "probe", "metric"):
        table.add_column(column)
    for column in ("value", "95% CI", "n"):
        table.add_column(column, justify="right")
    for task, probes in results["results"].items():
        for probe, metrics in probes.items():
            for name, m in metrics.items():
                table.add_row(
                    task,
                    probe,
                    Text(name),
                    f"{m['value']:.4f}",
                    f"[{m['ci_low']:.4f}, {m['ci_high']:.4f}]",
                    str(m["n"]),
                )
    return table


def details_tables(results: dict[str, Any]) -> list[Table]:
    """Tables a probe left in `details`: each key listed in `details["tables"]` (default
    "variants") holds a list of flat dicts, one row each; a Metric dict shows as value [CI]."""
    tables = []
    for task, probes in results.get("details", {}).items():
        for probe, details in probes.items():
            for key in details.get("tables", ["variants"]):
                rows = details.get(key)
                if not rows:
                    continue
                columns = list(dict.fromkeys(k for row in rows for k in row))
                suffix = f"scoring {details.get('scoring')}" if key == "variants" else key
                table = Table(title=f"{task} · {probe} · {suffix}")
                for i, column in enumerate(columns):
                    table.add_column(Text(column), justify="left" if i == 0 else "right")  # "[x]" is not markup
                for row in rows:
                    table.add_row(*(Text(_cell(row.get(c))) for c in columns))
                tables.append(table)
    return tables


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dict) and {"value", "ci_low", "ci_high"} <= value.keys():
        return f"{_cell(value['value'])} [{_cell(value['ci_low'])}, {_cell(value['ci_high'])}]"
    if isinstance(value, float):
        return f"{value:.4f}" if value >= 1e-3 or value == 0 else f"{value:.1e}"
    return str(value)


def headline(line: dict[str, Any]) -> str:
    """A summary line's figure: `spread 0.250 [0.117, 0.383] n=60`."""
    return (f"{line.get('metric')} {_cell(float(line.get('value', float('nan'))))} "
            f"[{_cell(float(line.get('ci_low', float('nan'))))}, {_cell(float(line.get('ci_high', float('nan'))))}] "
            f"n={line.get('n')}")


def summary_rows(results: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """The summary card's lines (challenge, task, headline, verdict), from a results file;
    lines that are not objects (a hand-edited file) are skipped."""
    rows = []
    for line in results.get("summary") or []:
        if isinstance(line, dict):
            rows.append((str(line.get("challenge", "")), str(line.get("task", "")), headline(line),
                         str(line.get("verdict", ""))))
    return rows
