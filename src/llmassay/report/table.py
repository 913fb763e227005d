"""The terminal summary: one row per (task, probe, metric) with value, 95 % CI and n."""

from __future__ import annotations

from typing import Any

from rich.table import Table


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
                    name,
                    f"{m['value']:.4f}",
                    f"[{m['ci_low']:.4f}, {m['ci_high']:.4f}]",
                    str(m["n"]),
                )
    return table
