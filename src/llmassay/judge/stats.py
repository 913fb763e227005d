"""What a set of judged pairs says about the runs and about the judge, each with a CI.

Per pair (the unit of every CI is the pair): its outcome; whether the two orders agree
(position consistency); the share of its verdicts that chose the first slot (a tie is
half), whose excess over 0.5 is position bias; the share that chose the longer answer
when lengths differ (length bias = that − 0.5); whether the same pair asked again at
temperature > 0 got the same verdict; and, with planted truth, whether the judge was right.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

from llmassay.judge.loglik import debiased_winner
from llmassay.metrics import bootstrap_mean, proportion
from llmassay.types import Metric

Row = dict[str, Any]
CHANCE = 0.5  # a judge picking one of two answers at random
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
    "longer_rate": longer,
    "repeat_stability": repeat_stable,
    "accuracy": correct_share,
    "unparseable_verdicts": unparseable_share,
}
BINARY = {"position_consistency", "repeat_stability"}


def shifted(m: Metric, by: float) -> Metric:
    return replace(m, value=m.value + by, ci_low=m.ci_low + by, ci_high=m.ci_high + by)


def analyse_pairs(rows: Sequence[Row], seed: int = 0) -> tuple[dict[str, Metric], dict[str, Any]]:
    """Corpus metrics of judged pairs (value, 95 % CI, n) and the counts behind them."""
    metrics: dict[str, Metric] = {}
    if not rows:
        return metrics, {}
    for side, name in (("a", "win_a"), ("b", "win_b"), ("tie", "tie"), ("inconsistent", "inconsistent"),
                       ("unparseable", "unparseable")):
        metrics[name] = proportion([r["outcome"] == side for r in rows])
    for name, read in PER_PAIR.items():
        values = [v for v in (read(r) for r in rows) if v is not None]
        if values:
            metrics[name] = proportion(values) if name in BINARY else bootstrap_mean([float(v) for v in values], seed)
    if "first_slot_rate" in metrics:
        metrics["first_slot_bias"] = shifted(metrics["first_slot_rate"], -CHANCE)
    if "longer_rate" in metrics:
        metrics["length_bias"] = shifted(metrics["longer_rate"], -CHANCE)
    debiased = [w for w in (debiased_winner(r) for r in rows) if w is not None]
    if debiased:  # loglik verdicts: who wins once the judge's slot preference is averaged out
        metrics["debiased_win_a"] = proportion([w == "a" for w in debiased])
        metrics["debiased_win_b"] = proportion([w == "b" for w in debiased])
    longer_debiased = [v for v in (debiased_longer(r) for r in rows) if v is not None]
    if longer_debiased:  # a length preference the slot preference may hide
        metrics["debiased_length_bias"] = shifted(bootstrap_mean(longer_debiased, seed), -CHANCE)
    errors: dict[str, int] = {}
    for r in rows:
        for o in [*r["orders"], *r.get("repeats", [])]:
            if o.get("error"):
                errors[o["error"]] = errors.get(o["error"], 0) + 1
    outcomes = {k: sum(r["outcome"] == k for r in rows) for k in ("a", "b", "tie", "inconsistent", "unparseable")}
    return metrics, {"pairs": len(rows), "outcomes": outcomes, "unparseable_reasons": errors}


def informative(accuracy: Metric | None) -> bool:
    """A judge is informative only when its calibration accuracy is clearly above chance."""
    return accuracy is not None and accuracy.n > 0 and accuracy.ci_low > CHANCE
