"""`compare --fail-on-regression METRIC[:DELTA]`: the verdict a CI job acts on.

A regression is B worse than A on a matched metric by more than DELTA (the tolerated
change, on the metric's own scale) *and* with the paired 95% CI of B − A excluding zero
on the worse side: a drop inside the noise of the items is not one. "Worse" is a fall
for most metrics and a rise for those where lower is better (LOWER_IS_BETTER, or
METRIC:DELTA:lower). Only paired deltas are tested; a metric without per-sample values
has no CI for its delta and is reported as not tested.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from fnmatch import fnmatchcase

from llmassay.report.compare import Comparison, MetricDelta, PairedDelta
from llmassay.types import LlmassayError

# Metric names (before any [variant] or ,filter) where a smaller value is the better one:
# lm-eval's perplexities and TER, and the probes' rates of something going wrong.
LOWER_IS_BETTER = frozenset({
    "perplexity", "word_perplexity", "byte_perplexity", "bits_per_byte", "ter",  # lm-eval
    "flip_rate", "flip_rate_mean", "sensitivity_mean",  # brittleness
    "biased", "toxic", "max_toxicity", "asr", "excess", "unverified", "false_positive", "first_slot_rate",
    "tokens", "ttft_s", "cpu_s", "energy_wh",  # cost and latency
})
DIRECTIONS = ("higher", "lower")


@dataclass(frozen=True)
class RegressionRule:
    """One --fail-on-regression: a metric pattern, the tolerated change, an optional direction."""

    pattern: str
    tolerance: float = 0.0
    direction: str | None = None  # None: from the metric's name (LOWER_IS_BETTER)

    @classmethod
    def parse(cls, text: str) -> RegressionRule:
        pattern, *rest = text.split(":")
        if not pattern or len(rest) > 2:
            raise LlmassayError(f"--fail-on-regression {text}: expected METRIC[:DELTA[:higher|lower]], "
                                "e.g. accuracy/acc:0.02")
        tolerance = 0.0
        if rest and rest[0]:
            try:
                tolerance = float(rest[0])
            except ValueError:
                raise LlmassayError(f"--fail-on-regression {text}: DELTA '{rest[0]}' is not a number") from None
            if not math.isfinite(tolerance) or tolerance < 0:
                raise LlmassayError(f"--fail-on-regression {text}: DELTA must be a number >= 0")
        direction = rest[1] if len(rest) == 2 else None
        if direction is not None and direction not in DIRECTIONS:
            raise LlmassayError(f"--fail-on-regression {text}: direction '{direction}' is not higher or lower")
        return cls(pattern, tolerance, direction)

    def matches(self, d: PairedDelta | MetricDelta) -> bool:
        names = (f"{d.task}/{d.probe}/{d.metric}", f"{d.probe}/{d.metric}", d.metric)
        return any(self.pattern == n or fnmatchcase(n, self.pattern) for n in names)

    def higher_is_better(self, metric: str) -> bool:
        if self.direction is not None:
            return self.direction == "higher"
        return base_name(metric) not in LOWER_IS_BETTER


def base_name(metric: str) -> str:
    """`acc[options_rot1]` → acc, `exact_match,strict-match` → exact_match."""
    return re.split(r"[\[,]", metric, maxsplit=1)[0]


@dataclass(frozen=True)
class Check:
    rule: RegressionRule
    delta: PairedDelta
    higher_is_better: bool
    regressed: bool

    def line(self) -> str:
        d = self.delta
        side = "higher" if self.higher_is_better else "lower"
        verdict = "REGRESSION" if self.regressed else "ok"
        return (f"{verdict}: {d.task} / {d.probe} / {d.metric} ({side} is better, tolerated {self.rule.tolerance:g}): "
                f"A {d.a:.4f} → B {d.b:.4f}, Δ {d.delta:+.4f} [{d.ci_low:+.4f}, {d.ci_high:+.4f}] n={d.n}")


def check_regressions(cmp: Comparison, rules: list[RegressionRule]) -> tuple[list[Check], list[str]]:
    """Each rule against the paired deltas it matches; notes for matched metrics that cannot be tested.
    A rule that matches no metric is a usage error (a typo must not pass a CI job)."""
    checks: list[Check] = []
    notes: list[str] = []
    for rule in rules:
        matched = [d for d in cmp.paired if rule.matches(d)]
        untested = [m for m in cmp.unpaired if rule.matches(m)]
        if not matched and not untested:
            known = sorted({f"{d.probe}/{d.metric}" for d in cmp.paired})
            raise LlmassayError(f"--fail-on-regression {rule.pattern}: matches no compared metric (paired: "
                                f"{', '.join(known[:12]) or 'none'}{', …' if len(known) > 12 else ''})")
        for d in matched:
            higher = rule.higher_is_better(d.metric)
            worse = -d.delta if higher else d.delta
            beyond_noise = d.ci_high < 0 if higher else d.ci_low > 0  # NaN bounds compare False: not a regression
            checks.append(Check(rule, d, higher, worse > rule.tolerance and beyond_noise))
        notes += [f"not tested: {m.task} / {m.probe} / {m.metric} has no per-sample values, so no paired CI"
                  for m in untested]
    return checks, notes
