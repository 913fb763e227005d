"""The view of any probe without its own module: its metric families as bar charts with
CIs, its details as tables, and one browser row per sample.

The probe-specific modules reuse these pieces, so the defaults here are the contract a
new probe gets for free: name metrics `family[key]` and they are plotted side by side.
"""

from __future__ import annotations

import json
import math
from typing import Any

from llmassay.report.plots import bars_with_ci
from llmassay.report.section import BrowserRow, Plot, Section, SectionContext, TableBlock
from llmassay.report.table import column_label
from llmassay.types import NOT_ESTIMABLE

OUTPUT_FIELDS = ("generation", "output", "text", "response", "completion")
CORRECT_FIELDS = ("correct", "acc", "exact_match")
JSON_VALID_FIELDS = ("json_valid", "valid_json", "parsed", "parse_ok")
HIDDEN_FIELDS = {"id", "probe", "prompt", "messages", *OUTPUT_FIELDS}


def build(ctx: SectionContext) -> Section:
    section = Section(ctx.task, ctx.probe)
    section.plots += family_plots(ctx)
    tables, raw = details_tables(ctx.details)
    section.tables += tables
    section.raw = raw
    return section


def family_plots(ctx: SectionContext, skip: tuple[str, ...] = ()) -> list[Plot]:
    """One bar chart per metric family `name[key]` with at least two members."""
    families: dict[str, list[str]] = {}
    for name in ctx.metrics:
        if name.endswith("]") and "[" in name:
            families.setdefault(name[: name.index("[")], []).append(name)
    plots = []
    for prefix, names in families.items():
        if prefix in skip or len(names) < 2:
            continue
        members = ctx.family(prefix)
        plots.append(interval_plot(ctx, f"family-{prefix}", f"{prefix} by key", list(members), [f"{prefix}[{k}]" for k in members], prefix))
    return plots


def interval_plot(
    ctx: SectionContext,
    key: str,
    title: str,
    categories: list[str],
    metric_names: list[str],
    axis_label: str,
    reference: float | None = None,
    reference_label: str = "",
) -> Plot:
    intervals = [ctx.interval(n) for n in metric_names]
    svg = bars_with_ci(
        ctx.key(key),
        categories,
        {axis_label: intervals},
        title=title,
        axis_label=f"{axis_label} (95 % CI)",
        limits=(0.0, 1.0) if _unit(intervals) else None,
        reference=reference,
        reference_label=reference_label,
    )
    return Plot(title, svg)


def grouped_plot(ctx: SectionContext, key: str, title: str, prefixes: list[str], keys: list[str], axis_label: str) -> Plot:
    """Families `prefix[key]` side by side: one group per key, one bar per prefix."""
    series = {p: [ctx.interval(f"{p}[{k}]") for k in keys] for p in prefixes}
    every = [iv for ivs in series.values() for iv in ivs]
    svg = bars_with_ci(ctx.key(key), keys, series, title=title, axis_label=f"{axis_label} (95 % CI)",
                       limits=(0.0, 1.0) if _unit(every) else None)
    return Plot(title, svg)


def _unit(intervals: list[Any]) -> bool:
    return all(iv is None or all((not math.isfinite(x)) or 0.0 <= x <= 1.0 for x in iv) for iv in intervals)


def details_tables(details: dict[str, Any]) -> tuple[list[TableBlock], dict[str, Any]]:
    """Lists of flat records become tables, scalars one key/value table; the rest is raw."""
    tables: list[TableBlock] = []
    scalars: list[list[str]] = []
    raw: dict[str, Any] = {}
    for name, value in details.items():
        if name == "tables":
            continue  # the probe's list of which keys are tables (llmassay.report.table's convention)
        if _is_scalar(value):
            scalars.append([name, cell(value)])
        elif isinstance(value, dict) and all(_is_scalar(v) for v in value.values()):
            tables.append(TableBlock(name, ["key", "value"], [[str(k), cell(v)] for k, v in value.items()]))
        elif isinstance(value, list) and value and all(isinstance(r, dict) and all(_is_scalar(v) for v in r.values()) for r in value):
            columns = list(dict.fromkeys(k for r in value for k in r))
            tables.append(TableBlock(name, [column_label(c) for c in columns],
                                     [[cell(r.get(c)) for c in columns] for r in value]))
        else:
            raw[name] = value
    if scalars:
        tables.insert(0, TableBlock("details", ["key", "value"], scalars))
    return tables, raw


def _is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, (str, int, float, bool)) or _is_metric(value)


def _is_metric(value: Any) -> bool:
    return isinstance(value, dict) and {"value", "ci_low", "ci_high"} <= value.keys()


def cell(value: Any) -> str:
    if value is None:
        return "—"
    if _is_metric(value):
        return f"{cell(value['value'])} [{_bound(value['ci_low'])}, {_bound(value['ci_high'])}]"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        return f"{value:.4f}" if abs(value) >= 1e-3 or value == 0 else f"{value:.1e}"
    return str(value)


def _bound(value: Any) -> str:
    """A CI bound: None is one the data could not give (types.Metric), not a missing value."""
    return NOT_ESTIMABLE if value is None else cell(value)


def browser_rows(ctx: SectionContext) -> list[BrowserRow]:
    return [
        BrowserRow(
            task=ctx.task,
            probe=ctx.probe,
            id=str(r["id"]),
            prompt=prompt_text(r),
            output=output_text(r),
            correct=first_bool(r, CORRECT_FIELDS),
            json_valid=first_bool(r, JSON_VALID_FIELDS),
            scores=scores_text(r),
            gold=gold_text(r),
        )
        for r in ctx.rows
    ]


def gold_text(row: dict[str, Any]) -> str:
    """The expected answer: a generation's target text, or a choice's text and index."""
    target, choices = row.get("target"), row.get("choices")
    if isinstance(target, int) and not isinstance(target, bool) and isinstance(choices, list) \
            and 0 <= target < len(choices):
        return f"{str(choices[target]).strip()} (choice {target})"
    if target is None:
        return ""
    return target if isinstance(target, str) else json.dumps(target, ensure_ascii=False, default=str)


def prompt_text(row: dict[str, Any]) -> str:
    if isinstance(row.get("prompt"), str):
        return row["prompt"]
    if row.get("messages") is not None:
        return json.dumps(row["messages"], ensure_ascii=False, indent=1)
    return ""


def output_text(row: dict[str, Any]) -> str:
    for name in OUTPUT_FIELDS:
        if isinstance(row.get(name), str):
            return row[name]
    return ""


def first_bool(row: dict[str, Any], names: tuple[str, ...]) -> bool | None:
    for name in names:
        if isinstance(row.get(name), bool):
            return row[name]
    return None


def scores_text(row: dict[str, Any]) -> str:
    shown = {k: v for k, v in row.items() if k not in HIDDEN_FIELDS}
    return json.dumps(shown, ensure_ascii=False, sort_keys=True, default=str)[:2000]


def paired_values(row: dict[str, Any]) -> dict[str, float]:
    """Every boolean field of a row, as 0/1: `compare` keeps those that are metrics."""
    return {k: float(v) for k, v in row.items() if isinstance(v, bool)}
