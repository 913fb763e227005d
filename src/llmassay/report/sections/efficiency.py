"""Efficiency: latency percentiles (E2E, TTFT, inter-token) side by side, and the method of
every figure — how requests were timed and whether energy was measured or estimated — as
notes at the top of the section, so no reader takes an estimate for a measurement.

Reads the probe's `e2e_s[pXX]`, `ttft_s[pXX]`, `itl_s[pXX]` and `details.timing_method`,
`details.energy`; everything else goes through the generic view.
"""

from __future__ import annotations

from llmassay.report.section import Section, SectionContext
from llmassay.report.sections import generic

LATENCIES = ("e2e_s", "ttft_s", "itl_s")


def build(ctx: SectionContext) -> Section:
    section = generic.build(ctx)
    shown = [p for p in LATENCIES if ctx.family(p)]
    quantiles = list(dict.fromkeys(k for p in shown for k in ctx.family(p)))
    plots = []
    if shown:
        plots.append(generic.grouped_plot(ctx, "latency", "latency percentiles, seconds (order-statistic CIs over requests)",
                                          shown, quantiles, "seconds"))
    section.plots = plots + generic.family_plots(ctx, skip=LATENCIES)
    section.notes = method_notes(ctx.details) + section.notes
    return section


def method_notes(details: dict) -> list[str]:
    notes = []
    timing = details.get("timing_method")
    if timing:
        notes.append(f"timed by: {', '.join(map(str, timing))}")
    energy = details.get("energy") or {}
    if energy.get("kind"):
        notes.append(f"energy: {', '.join(map(str, energy['kind']))} — {'; '.join(map(str, energy.get('method') or []))}")
    if energy.get("caveat"):
        notes.append(f"caveat: {energy['caveat']}")
    if details.get("served"):
        notes.append(str(details["served"]))
    return notes
