"""What changed between two answers to one item: right, wrong or unparsed before and after.

An unparsed answer (the parser names no option, or two) is its own outcome, never right. A
flip is a change of mind: both answers name an option and they differ. An item whose first
answer names no option cannot flip (it is left out of flip rates); a second answer that names
none is no flip either, and is counted as `unparsed` in the transition table.
"""

from __future__ import annotations

from collections.abc import Iterable

OUTCOMES = ("right", "wrong", "unparsed")


def outcome(pred: int | None, target: int) -> str:
    return "unparsed" if pred is None else "right" if pred == target else "wrong"


def flipped(first: int | None, second: int | None) -> bool | None:
    """True when both answers name an option and differ; None when the first names none."""
    if first is None:
        return None
    return second is not None and second != first


def transition_counts(pairs: Iterable[tuple[int | None, int | None, int]]) -> dict[str, int]:
    """(first pred, second pred, target) per item → count per "before→after" outcome pair."""
    counts = {f"{a}→{b}": 0 for a in OUTCOMES for b in OUTCOMES}
    for first, second, target in pairs:
        counts[f"{outcome(first, target)}→{outcome(second, target)}"] += 1
    return counts
