"""JSON schema → llama.cpp grammar (GBNF), made safe for the schemas people write.

llama-cpp-python's converter (a port of llama.cpp's json_schema_to_grammar.py) copies
regex escapes such as `\\d` or `\\.` into the grammar, which llama.cpp's grammar parser
rejects; the rejected grammar then reaches the sampler as a null pointer and the process
dies (exit 139). It also ignores `minimum`/`maximum`, lets `.` produce a bare `"` that
ends the JSON string and a string hold a raw newline, asserts on unanchored patterns, and
drops every keyword beside a list `type`, `anyOf` or `$ref`. Here a schema first goes through `_schema_subset.enforceable`:
what it keeps becomes grammar that only admits valid output (bounds on integers and
whole-number bounds on numbers as digit rules, patterns via `_gbnf_pattern`), and what it
cannot keep comes back as a list of `Relaxation`s. `compile_schema` returns both, for a
caller that validates answers against the full schema afterwards (the structured probe);
`schema_to_gbnf` (the llama.cpp backend's entry) refuses a schema it would have to relax,
with a one-line `LlmassayError` naming the keyword: never a crash, never output that the
grammar claims but the schema rejects.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from typing import Any

from llmassay.backends import llama_internals
from llmassay.backends._gbnf_pattern import Unsupported, safe_pattern
from llmassay.backends._schema_subset import (
    BOUNDS,
    FORMAT_PATTERNS,
    NumberBounds,
    Relaxation,
    Subset,
    enforceable,
    integer_bounds,
    number_bounds,
)
from llmassay.types import GenerateRequest, LlmassayError

__all__ = ["CompiledSchema", "compile_schema", "enforced_schema", "integer_range", "number_range", "safe_pattern", "schema_to_gbnf"]


@dataclass(frozen=True)
class CompiledSchema:
    gbnf: str
    schema: dict[str, Any]  # the enforced subset: what any backend should decode under
    relaxed: tuple[Relaxation, ...]  # what the full schema asks beyond it


def enforced_schema(schema: dict[str, Any] | str) -> Subset:
    """The part of a JSON schema (a dict or JSON string) that a grammar enforces exactly and
    the keywords it relaxes, without building the grammar: pure Python, so a backend other
    than llama.cpp (which needs no GBNF) does not need llama-cpp-python; a one-line
    LlmassayError only for what is not a usable schema."""
    schema_json = schema if isinstance(schema, str) else GenerateRequest.schema_string(schema)
    try:
        return enforceable(json.loads(schema_json))
    except Unsupported as exc:
        raise LlmassayError(f"{_schema_label(schema_json)}: {exc}") from None
    except (ValueError, TypeError, RecursionError) as exc:
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:160]
        raise LlmassayError(f"{_schema_label(schema_json)}: not a usable schema ({reason})") from None


def compile_schema(schema: dict[str, Any] | str) -> CompiledSchema:
    """The grammar for the enforceable part of a JSON schema (a dict or JSON string), with
    the keywords it relaxes; a one-line LlmassayError only for what is not a usable schema."""
    schema_json = schema if isinstance(schema, str) else GenerateRequest.schema_string(schema)
    try:
        subset = enforceable(json.loads(schema_json))
        gbnf = llama_internals.schema_grammar(copy.deepcopy(subset.schema), _SafeVisitor())
        return CompiledSchema(gbnf, subset.schema, subset.relaxed)
    except Unsupported as exc:
        raise LlmassayError(f"{_schema_label(schema_json)}: {exc}") from None
    except (AssertionError, ValueError, KeyError, TypeError, AttributeError, RecursionError) as exc:
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:160]
        raise LlmassayError(f"{_schema_label(schema_json)}: cannot be turned into a grammar ({reason})") from None


def schema_to_gbnf(schema_json: str) -> str:
    """The GBNF grammar for a JSON schema string that a grammar enforces whole, or a
    one-line LlmassayError naming the first keyword it cannot (the structured probe sends
    `compile_schema(...).schema`, which never has one)."""
    compiled = compile_schema(schema_json)
    if compiled.relaxed:
        raise LlmassayError(f"{_schema_label(schema_json)}: {compiled.relaxed[0]} (cannot be enforced by a grammar)")
    return compiled.gbnf


_schema_label = GenerateRequest.schema_label


class _SafeVisitor(llama_internals.SchemaVisitor):
    """Visits schemas `enforceable` has already reduced: bounds and formats the base
    converter ignores become grammar here, everything else is the base converter's
    (llama-cpp-python's, reached only through `llama_internals`)."""

    # the base rule lets a raw newline or tab into a string: not JSON
    char_rule = r'[^"\\\x00-\x1F] | "\\" (["\\/bfnrt] | "u" [0-9a-fA-F]{4})'

    def visit(self, conv: llama_internals.Converter, schema: Any, name: str) -> str | None:
        if not isinstance(schema, dict):
            raise Unsupported(f"'{name or 'root'}' is not a schema object: {str(schema)[:40]!r}")
        types = schema.get("type")
        bounded = any(k in schema for k in BOUNDS) and not ({"enum", "const", "$ref", "anyOf", "oneOf"} & schema.keys())
        if types == "string" and schema.get("format") in FORMAT_PATTERNS and "pattern" not in schema:
            return conv.visit_pattern(FORMAT_PATTERNS[schema["format"]], name or "root")
        if types == "integer" and bounded:
            lo, hi = integer_bounds(schema)
            return conv.add_rule(name or "root", f"({integer_range(lo, hi)}) space")
        if types == "number" and bounded:
            return conv.add_rule(name or "root", f"({number_range(number_bounds(schema))}) space")
        return None

    def pattern(self, pattern: str) -> str:
        return safe_pattern(pattern)


# -- integer ranges -------------------------------------------------------------------------
def integer_range(lo: int | None, hi: int | None) -> str:
    """A GBNF alternation of exactly the integers in [lo, hi] (None: unbounded), written
    as JSON writes them (no leading zeros, no "-0")."""
    parts: list[str] = []
    if hi is None or hi >= 0:
        parts += _naturals(max(lo, 0) if lo is not None else 0, hi)
    if lo is None or lo < 0:
        smallest = -hi if hi is not None and hi < 0 else 1
        parts += [f'"-" ({" | ".join(_naturals(smallest, -lo if lo is not None else None))})']
    return " | ".join(parts)


def _naturals(lo: int, hi: int | None) -> list[str]:
    """Alternatives for the non-negative integers in [lo, hi]."""
    if hi is None:  # every number longer than `lo` is in range, plus those of its length
        width = len(str(lo))
        return _naturals(lo, 10**width - 1) + [f"[1-9] {' '.join(['[0-9]'] * width)} [0-9]*"]
    out: list[str] = []
    for width in range(len(str(lo)), len(str(hi)) + 1):
        a, b = max(lo, 10 ** (width - 1) if width > 1 else 0), min(hi, 10**width - 1)
        if a <= b:
            out += _same_width(str(a), str(b))
        # numbers of one width are contiguous, so a, b never skip a width
    return out


def _same_width(lo: str, hi: str) -> list[str]:
    """Digit strings of one width between lo and hi (inclusive), as GBNF sequences."""
    if lo == hi:
        return [f'"{lo}"']
    if len(lo) == 1:
        return [f"[{lo}-{hi}]"]
    rest = len(lo) - 1
    if lo[0] == hi[0]:
        return [f'"{lo[0]}" ({" | ".join(_same_width(lo[1:], hi[1:]))})']
    out, first, last, tail = [], int(lo[0]), int(hi[0]), []
    if lo[1:] != "0" * rest:
        out.append(f'"{lo[0]}" ({" | ".join(_same_width(lo[1:], "9" * rest))})')
        first += 1
    if hi[1:] != "9" * rest:
        tail.append(f'"{hi[0]}" ({" | ".join(_same_width("0" * rest, hi[1:]))})')
        last -= 1
    if first <= last:
        out.append(" ".join([f"[{first}-{last}]"] + ["[0-9]"] * rest))
    return out + tail




# -- number ranges ------------------------------------------------------------------------
# Digits after the point: free, none but zeros, or capped near an exclusive bound so that the
# decimal is at least 1e-9 away from it (NumberBounds: then float rounding keeps it in range).
_FRACTION = {
    "any": '("." [0-9]{1,15})?',
    "zero": '("." "0"{1,15})?',
    "above": '"." [0-9]{0,8} [1-9] [0-9]{0,15}',  # a non-zero digit among the first nine
    "below": '("." [0-9]{1,9})?',
    "between": '"." [0-9]{0,8} [1-9]',
}


def number_range(bounds: NumberBounds) -> str:
    """A GBNF alternation of decimals (no exponent, no "-0") in the bounds: a non-negative
    number is one without a sign, a bounded one a rule on its integer part and fraction."""
    lo, lo_ex, hi, hi_ex = bounds.lo, bounds.lo_exclusive, bounds.hi, bounds.hi_exclusive
    parts: list[str] = []
    if hi is None or hi > 0 or (hi == 0 and not hi_ex):
        parts += _magnitudes(max(lo, 0) if lo is not None else 0, lo_ex if lo is not None and lo >= 0 else False,
                             hi, hi_ex)
    if lo is None or lo < 0:  # negatives: "-" then a magnitude above 0 (never "-0")
        low, low_ex = (-hi, hi_ex) if hi is not None and hi < 0 else (0, True)
        parts += [f'"-" ({alt})' for alt in _magnitudes(low, low_ex, None if lo is None else -lo, lo_ex)]
    return " | ".join(parts)


def _magnitudes(lo: int, lo_ex: bool, hi: int | None, hi_ex: bool) -> list[str]:
    """Alternatives for unsigned decimals between lo and hi (0 ≤ lo; hi None: unbounded)."""
    top = None if hi is None else (hi - 2 if hi_ex else hi - 1)  # integer parts free of the upper bound
    free_lo = lo + 1 if lo_ex else lo
    out = []
    if top is None or free_lo <= top:
        out.append(f"({integer_range(free_lo, top)}) {_FRACTION['any']}")
    for whole in sorted({lo, *(() if hi is None else (hi - 1, hi))}):
        if whole < lo or (top is not None and free_lo <= whole <= top) or (top is None and whole >= free_lo):
            continue
        kind = _fraction(whole, lo, lo_ex, hi, hi_ex)
        if kind is not None:
            out.append(f'"{whole}" {_FRACTION[kind]}')
    return out


def _fraction(whole: int, lo: int, lo_ex: bool, hi: int | None, hi_ex: bool) -> str | None:
    """Which fractions keep whole.fraction within the bounds (None: no fraction does)."""
    above = whole == lo and lo_ex  # the fraction must make it larger than lo
    if hi is None or whole < hi - 1:
        upper = "any"
    elif whole == hi - 1:
        upper = "below" if hi_ex else "any"
    elif whole == hi and not hi_ex:
        upper = "zero"
    else:
        return None
    if not above:
        return upper
    return {"any": "above", "below": "between"}.get(upper)
