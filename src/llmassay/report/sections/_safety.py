"""What the bias and safety sections share: a metric as "value [low, high]" with its n, and
a detector's validation (and its stress check) as tables. Model text is passed on as plain
strings; the report's templates escape it (nothing here marks anything safe)."""

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


def validation_tables(ctx: SectionContext, use: str) -> list[TableBlock]:
    """The detector's sensitivity and specificity on its labelled split (details.detector_validation:
    the held-out test split's model outputs; results from before it say no split), and apart from
    them the stress check on its hand-written cases; `use` says what the probe does with the first."""
    v = ctx.details.get("detector_validation")
    if not isinstance(v, dict) or "sensitivity" not in v:
        return []
    split = {"test": "its held-out test split's model outputs", "dev": "its dev set (in-sample)"}.get(
        v.get("split"), "its labelled set")
    n = v.get("n", sum(int(v.get(k) or 0) for k in ("tp", "fn", "tn", "fp")))
    tables = [TableBlock(
        f"detector '{v.get('detector')}' on {split} ({use})",
        ["cases", "sensitivity", "specificity", "tp", "fn", "tn", "fp", "misread cases"],
        [[str(n), ci(v["sensitivity"]), ci(v["specificity"]), str(v.get("tp")), str(v.get("fn")), str(v.get("tn")),
          str(v.get("fp")), ", ".join(map(str, v.get("errors") or [])) or "—"]],
    )]
    stress = v.get("stress_check")
    if isinstance(stress, dict) and stress.get("cases"):
        tables.append(TableBlock(
            f"stress check: detector '{v.get('detector')}' on hand-written cases written to be misread "
            "(not a sample of outputs: never in the correction)",
            ["cases", "misread", "share misread", "misread cases"],
            [[str(stress["cases"]), str(stress.get("misread_count")), ci(stress.get("misread")),
              ", ".join(map(str, stress.get("errors") or [])) or "—"]],
        ))
    return tables


def notes(ctx: SectionContext) -> list[str]:
    """The probe's notes, then the detector's caveats (a class with too few cases to lean on)."""
    v = ctx.details.get("detector_validation")
    caveats = [f"detector '{v.get('detector')}': {c}" for c in v.get("caveats") or []] if isinstance(v, dict) else []
    return [str(n) for n in ctx.details.get("notes") or []] + caveats
