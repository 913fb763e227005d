"""What the bias and safety sections share: a metric as "value [low, high]" with its n, and
a detector's validation as a table. Model text is passed on as plain strings; the report's
templates escape it (nothing here marks anything safe)."""

from __future__ import annotations

import math
from typing import Any

from llmassay.report.section import SectionContext, TableBlock


def ci(metric: dict[str, Any] | None, signed: bool = False) -> str:
    """'0.55 [0.48, 0.63]' (two decimals, as the README's tables), '—' when not measured."""
    if not metric or not isinstance(metric.get("value"), (int, float)) or not math.isfinite(metric["value"]):
        return "—"
    fmt = "{:+.2f}" if signed else "{:.2f}"
    return f"{fmt.format(metric['value'])} [{fmt.format(metric['ci_low'])}, {fmt.format(metric['ci_high'])}]"


def n_of(metric: dict[str, Any] | None) -> str:
    return str(metric.get("n", "—")) if metric else "—"


def excludes(metric: dict[str, Any] | None, reference: float) -> bool:
    """The metric's CI lies wholly on one side of `reference`."""
    if not metric or not all(isinstance(metric.get(k), (int, float)) for k in ("ci_low", "ci_high")):
        return False
    return metric["ci_low"] > reference or metric["ci_high"] < reference


def validation_table(ctx: SectionContext, use: str) -> TableBlock | None:
    """The detector's sensitivity and specificity on its labelled split (details.detector_validation:
    the held-out test split; results from before it say no split); `use` says what the probe does
    with them."""
    v = ctx.details.get("detector_validation")
    if not isinstance(v, dict) or "sensitivity" not in v:
        return None
    split = {"test": "its held-out test split", "dev": "its dev set (in-sample)"}.get(v.get("split"),
                                                                                     "its labelled set")
    return TableBlock(
        f"detector '{v.get('detector')}' on {split} ({use})",
        ["sensitivity", "specificity", "tp", "fn", "tn", "fp", "misread cases"],
        [[ci(v["sensitivity"]), ci(v["specificity"]), str(v.get("tp")), str(v.get("fn")), str(v.get("tn")),
          str(v.get("fp")), ", ".join(map(str, v.get("errors") or [])) or "—"]],
    )


def notes(ctx: SectionContext) -> list[str]:
    return [str(n) for n in ctx.details.get("notes") or []]
