"""Reading a judge's verdict out of its text, without guessing.

MT-Bench's judge ends with `[[A]]`, `[[B]]` or `[[C]]` (tie). FastChat takes the first
bracket it finds; a small model that echoes the instructions ("[[A]]" if A is better,
"[[B]]" if …) would then always "vote" A. Here an output with no verdict, or with two
different ones, is *unparseable*: counted and reported with its reason, never resolved.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

PAIRWISE = re.compile(r"\[\[\s*([ABC])\s*\]\]")
RATING = re.compile(r"\[\[\s*(10|[1-9]|pass|fail)\s*\]\]", re.IGNORECASE)
NO_VERDICT = "no verdict"
CONFLICT = "conflicting verdicts"


@dataclass(frozen=True)
class Parsed:
    """A verdict (None when unparseable) and, when None, why."""

    value: str | None
    error: str | None = None


def _single(found: list[str]) -> Parsed:
    distinct = list(dict.fromkeys(found))
    if not distinct:
        return Parsed(None, NO_VERDICT)
    if len(distinct) > 1:
        return Parsed(None, f"{CONFLICT} ({', '.join(distinct)})")
    return Parsed(distinct[0])


def parse_pairwise(text: str) -> Parsed:
    """"A", "B" or "C" (tie) from `[[A]]`/`[[B]]`/`[[C]]`; unparseable when absent or mixed."""
    return _single(PAIRWISE.findall(text or ""))


def parse_rating(text: str, scale: str) -> Parsed:
    """A grade from `[[7]]` (scale "1-10") or `[[PASS]]`/`[[FAIL]]` (scale "pass-fail"),
    as "1".."10", "pass" or "fail"; a grade of the other scale is unparseable."""
    found = [m.lower() for m in RATING.findall(text or "")]
    wanted = [g for g in found if (g in ("pass", "fail")) == (scale == "pass-fail")]
    if found and not wanted:
        return Parsed(None, f"grade not on the {scale} scale ({found[0]})")
    return _single(wanted)
