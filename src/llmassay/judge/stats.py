"""What a set of judged pairs says about the runs and about the judge, each with a CI.

Per pair (the unit of every CI is the pair): its outcome; whether the two orders agree
(position consistency); the share of its verdicts that chose the first slot (a tie is
half), whose excess over 0.5 is position bias (each pair is shown both ways, so the slot
is balanced by design); the share that chose the longer answer when lengths differ;
whether the same pair asked again at temperature > 0 got the same verdict; and, with
planted truth, whether the judge was right.

The longer-answer share is *not* a length bias: when the better answer tends to be the
longer one, a judge that is always right chooses the longer answer on every pair. So it
is reported as what it is (`longer_chosen_rate`), and a length bias only where quality is
held fixed: `length_bias_equal_correctness`, over pairs whose two answers are equally
correct by exact match against the reference (the oracle's rule), and, causally, the
calibration's `verbosity_effect` (the same answer padded vs not).

Every per-pair figure is a share in [0, 1], so its CI is Wilson's with n = pairs: unlike a
bootstrap it keeps its width at 0 % and 100 % (30 pairs all naming slot A give a first-slot
rate of 1.00 [0.89, 1.00], not [1.00, 1.00]), and since a share's variance is at most
p(1 − p) it is conservative where a pair's two orders split.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

from llmassay.judge.loglik import debiased_winner
from llmassay.metrics import exact_match, proportion
from llmassay.types import Metric

Row = dict[str, Any]
CHANCE = 0.5  # a judge picking one of two answers at random
# Calibration items below which no judge is called informative: with fewer, one item flips the
# verdict, and Wilson's one-sided error at chance swings above its nominal 2.5 % (6.25 % at n = 4).
MIN_CALIBRATION_ITEMS = 10
UNINFORMATIVE = "judge uninformative"
SLOT_SCORE = {"A": 1.0, "B": 0.0, "C": 0.5}


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def first_slot(row: Row) -> float | None:
    """Share of the pair's parsed verdicts that named the first slot (tie = ½)."""
    return _mean([SLOT_SCORE[o["verdict"]] for o in row["orders"] if o["verdict"] is not None])


def consistent(row: Row) -> bool | None:
    winners = [o["winner"] for o in row["orders"]]
    return None if None in winners else len(set(winners)) == 1


def longer(row: Row) -> float | None:
    """Share of parsed verdicts that chose the longer answer (tie = ½); None for equal lengths."""
    if row["len_a"] == row["len_b"]:
        return None
    side = "a" if row["len_a"] > row["len_b"] else "b"
    return _mean([1.0 if o["winner"] == side else 0.5 if o["winner"] == "tie" else 0.0
                  for o in row["orders"] if o["winner"] is not None])


def equally_correct(row: Row) -> bool | None:
    """Both answers right, or both wrong, by exact match against the reference; None without
    one, or when it is an open-ended task's reference (exact match says nothing there)."""
    reference = row.get("reference")
    if reference is None or row.get("reference_exact") is False:
        return None
    return exact_match(row["answer_a"], reference) == exact_match(row["answer_b"], reference)


def longer_when_equally_correct(row: Row) -> float | None:
    """`longer` on a pair whose answers are equally correct (quality held fixed), else None."""
    return longer(row) if equally_correct(row) else None


def repeat_stable(row: Row) -> bool | None:
    """The first order's verdict and its repeats at temperature > 0 all agree (parsed ones, ≥ 2)."""
    if not row.get("repeats"):
        return None
    verdicts = [o["verdict"] for o in [row["orders"][0], *row["repeats"]] if o["verdict"] is not None]
    return len(set(verdicts)) == 1 if len(verdicts) >= 2 else None


def correct_share(row: Row) -> float | None:
    """Planted truth: share of the two orders whose verdict named the right side (tie ½,
    unparseable 0 — a judge that cannot answer has not found the right one)."""
    if row.get("correct") is None:
        return None
    return _mean([1.0 if o["winner"] == row["correct"] else 0.5 if o["winner"] == "tie" else 0.0
                  for o in row["orders"]])


def debiased_correct(row: Row) -> float | None:
    """Planted truth, loglik verdicts: 1 when the swap-averaged margin favours the right side
    (½ for a dead heat), None without log-probabilities."""
    side = debiased_winner(row) if row.get("correct") is not None else None
    return None if side is None else 1.0 if side == row["correct"] else 0.5 if side == "tie" else 0.0


def debiased_longer(row: Row) -> float | None:
    """Loglik verdicts: 1 when the swap-averaged margin favours the longer answer (½ at 0);
    None for equal lengths or without log-probabilities."""
    side = debiased_winner(row) if row["len_a"] != row["len_b"] else None
    if side is None:
        return None
    return 0.5 if side == "tie" else float(side == ("a" if row["len_a"] > row["len_b"] else "b"))


def unparseable_share(row: Row) -> float:
    asked = [*row["orders"], *row.get("repeats", [])]
    return sum(o["verdict"] is None for o in asked) / len(asked)


PER_PAIR: dict[str, Callable[[Row], float | bool | None]] = {
    "position_consistency": consistent,
    "first_slot_rate": first_slot,
    "longer_chosen_rate": longer,
    "repeat_stability": repeat_stable,
    "accuracy": correct_share,
    "unparseable_verdicts": unparseable_share,
}


def shifted(m: Metric, by: float) -> Metric:
    return replace(m, value=m.value + by, ci_low=None if m.ci_low is None else m.ci_low + by,
                   ci_high=None if m.ci_high is None else m.ci_high + by)


def analyse_pairs(rows: Sequence[Row], seed: int = 0) -> tuple[dict[str, Metric], dict[str, Any]]:
    """Corpus metrics of judged pairs (value, 95 % CI, n) and the counts behind them.
    `seed` is kept for the callers' sake: every interval here is Wilson's, none is drawn."""
    del seed
    metrics: dict[str, Metric] = {}
    if not rows:
        return metrics, {}
    for side, name in (("a", "win_a"), ("b", "win_b"), ("tie", "tie"), ("inconsistent", "inconsistent"),
                       ("unparseable", "unparseable")):
        metrics[name] = proportion([r["outcome"] == side for r in rows])
    for name, read in PER_PAIR.items():
        values = [v for v in (read(r) for r in rows) if v is not None]
        if values:
            metrics[name] = proportion([float(v) for v in values])
    if "first_slot_rate" in metrics:
        metrics["first_slot_bias"] = shifted(metrics["first_slot_rate"], -CHANCE)
    equal = [v for v in (longer_when_equally_correct(r) for r in rows) if v is not None]
    if equal:  # quality held fixed: what remains is a preference for length
        metrics["length_bias_equal_correctness"] = shifted(proportion(equal), -CHANCE)
    debiased = [w for w in (debiased_winner(r) for r in rows) if w is not None]
    if debiased:  # loglik verdicts: who wins once the judge's slot preference is averaged out
        metrics["debiased_win_a"] = proportion([w == "a" for w in debiased])
        metrics["debiased_win_b"] = proportion([w == "b" for w in debiased])
    longer_debiased = [v for v in (debiased_longer(r) for r in rows) if v is not None]
    if longer_debiased:  # as longer_chosen_rate, once the slot preference is averaged out (not a length bias)
        metrics["debiased_longer_chosen_rate"] = proportion(longer_debiased)
    errors: dict[str, int] = {}
    for r in rows:
        for o in [*r["orders"], *r.get("repeats", [])]:
            if o.get("error"):
                errors[o["error"]] = errors.get(o["error"], 0) + 1
    outcomes = {k: sum(r["outcome"] == k for r in rows) for k in ("a", "b", "tie", "inconsistent", "unparseable")}
    return metrics, {"pairs": len(rows), "outcomes": outcomes, "unparseable_reasons": errors}


def informative(accuracy: Metric | None) -> bool:
    """A judge is informative only when its calibration accuracy (Wilson CI) is clearly above
    chance on at least MIN_CALIBRATION_ITEMS items."""
    return accuracy is not None and accuracy.n >= MIN_CALIBRATION_ITEMS and accuracy.interval()[0] > CHANCE


def uninformative_reason(accuracy: Metric | None) -> str:
    """Why a judge is not informative, in words (empty when it is)."""
    if accuracy is None or accuracy.n == 0:
        return "no calibration item was judged"
    if accuracy.n < MIN_CALIBRATION_ITEMS:
        return f"{accuracy.n} calibration items, fewer than the {MIN_CALIBRATION_ITEMS} needed"
    return "" if informative(accuracy) else "accuracy's CI reaches chance (50%)"
