"""JSON schema → llama.cpp grammar (GBNF), made safe for the schemas people write.

llama-cpp-python's converter (a port of llama.cpp's json_schema_to_grammar.py) copies
regex escapes such as `\\d` or `\\.` into the grammar, which llama.cpp's grammar parser
rejects; the rejected grammar then reaches the sampler as a null pointer and the process
dies (exit 139). It also ignores `minimum`/`maximum`, lets `.` produce a bare `"` that
ends the JSON string, and asserts on unanchored patterns. Here each schema keyword either
becomes grammar that only admits valid output, or raises a one-line `LlmassayError` that
names the keyword: never a crash, never output that the grammar claims but the schema
rejects.

Patterns are translated to a subset of their language (`\\s` → a space, classes lose the
characters a JSON string would have to escape): what the grammar admits always matches.
"""

from __future__ import annotations

import json
import math
from typing import Any

from llama_cpp.llama_grammar import SchemaConverter

from llmassay.types import GenerateRequest, LlmassayError

# Characters a JSON string may not hold unescaped; generated strings never contain them.
_JSON_UNSAFE: list[tuple[int, int]] = [(0x00, 0x1F), (0x22, 0x22), (0x5C, 0x5C)]
_SHORTHAND: dict[str, list[tuple[int, int]]] = {
    "d": [(0x30, 0x39)],
    "w": [(0x30, 0x39), (0x41, 0x5A), (0x5F, 0x5F), (0x61, 0x7A)],
    "s": [(0x09, 0x0D), (0x20, 0x20)],
}
# Keywords that constrain a value but that the converter would silently ignore.
_UNSUPPORTED = (
    "multipleOf", "uniqueItems", "contains", "minContains", "maxContains", "minProperties",
    "maxProperties", "patternProperties", "propertyNames", "dependentRequired",
    "dependentSchemas", "dependencies", "not", "if", "then", "else", "unevaluatedProperties",
    "unevaluatedItems",
)  # fmt: skip
_BOUNDS = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum")
# Formats the converter knows (date, time, date-time, uuid) plus these, as patterns.
_FORMAT_PATTERNS = {
    "email": r"^[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$",
    "ipv4": r"^((25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$",
    "hostname": r"^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$",
}
_NATIVE_FORMATS = ("date", "time", "date-time", "uuid", "uuid1", "uuid2", "uuid3", "uuid4", "uuid5")


class Unsupported(Exception):
    """A schema feature that cannot be enforced; the message names it."""


def schema_to_gbnf(schema_json: str) -> str:
    """The GBNF grammar for a JSON schema string, or a one-line LlmassayError."""
    try:
        schema = json.loads(schema_json)
        converter = _SafeConverter()
        converter.visit(converter.resolve_refs(schema, "stdin"), "")
        return converter.format_grammar()
    except Unsupported as exc:
        raise LlmassayError(f"{_schema_label(schema_json)}: {exc}") from None
    except (AssertionError, ValueError, KeyError, TypeError, AttributeError, RecursionError) as exc:
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:160]
        raise LlmassayError(f"{_schema_label(schema_json)}: cannot be turned into a grammar ({reason})") from None


_schema_label = GenerateRequest.schema_label


class _SafeConverter(SchemaConverter):  # type: ignore[misc]
    def __init__(self) -> None:
        super().__init__(prop_order={}, allow_fetch=False, dotall=False, raw_pattern=False)

    def visit(self, schema: Any, name: str) -> str:
        if not isinstance(schema, dict):
            raise Unsupported(f"{_where(name)} is not a schema object: {str(schema)[:40]!r}")
        _check_keywords(schema, name)
        types = schema.get("type")
        if types == "string" and "format" in schema and "pattern" not in schema:
            fmt = schema["format"]
            if fmt in _FORMAT_PATTERNS:
                return self._visit_pattern(_FORMAT_PATTERNS[fmt], name or "root")
            if fmt not in _NATIVE_FORMATS:
                known = ", ".join((*_NATIVE_FORMATS[:4], *_FORMAT_PATTERNS))
                raise Unsupported(f"keyword 'format': '{fmt}' at {_where(name)} cannot be enforced (known: {known})")
        if types == "integer" and any(k in schema for k in _BOUNDS):
            lo, hi = _integer_bounds(schema, name)
            return self._add_rule(name or "root", f"({integer_range(lo, hi)}) space")
        return str(super().visit(schema, name))

    def _visit_pattern(self, pattern: str, name: str) -> str:
        return str(super()._visit_pattern(safe_pattern(pattern), name))


def _where(name: str) -> str:
    return f"'{name}'" if name else "the root"


def _check_keywords(schema: dict[str, Any], name: str) -> None:
    for key in _UNSUPPORTED:
        if key in schema:
            raise Unsupported(f"keyword '{key}' at {_where(name)} cannot be enforced by a grammar")
    bounded = [k for k in _BOUNDS if k in schema]
    if bounded and schema.get("type") != "integer":
        raise Unsupported(f"keyword '{bounded[0]}' at {_where(name)} is enforced on integers only")
    if "pattern" in schema and ({"minLength", "maxLength"} & schema.keys()):
        raise Unsupported(f"keyword 'minLength'/'maxLength' with 'pattern' at {_where(name)}: put the length in the pattern")


def _integer_bounds(schema: dict[str, Any], name: str) -> tuple[int | None, int | None]:
    """Inclusive integer bounds from minimum/maximum/exclusive* (draft 4 booleans too)."""
    lo = hi = None
    if isinstance(schema.get("minimum"), (int, float)):
        lo = math.ceil(schema["minimum"]) + (1 if schema.get("exclusiveMinimum") is True else 0)
    if isinstance(schema.get("maximum"), (int, float)):
        hi = math.floor(schema["maximum"]) - (1 if schema.get("exclusiveMaximum") is True else 0)
    ex_lo, ex_hi = schema.get("exclusiveMinimum"), schema.get("exclusiveMaximum")
    if isinstance(ex_lo, (int, float)) and not isinstance(ex_lo, bool):
        lo = max(lo if lo is not None else -math.inf, math.floor(ex_lo) + 1)
    if isinstance(ex_hi, (int, float)) and not isinstance(ex_hi, bool):
        hi = min(hi if hi is not None else math.inf, math.ceil(ex_hi) - 1)
    if lo is not None and hi is not None and lo > hi:
        raise Unsupported(f"keyword 'minimum'/'maximum' at {_where(name)}: no integer lies between {lo} and {hi}")
    return lo, hi


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


# -- patterns ---------------------------------------------------------------------------------
def safe_pattern(pattern: str) -> str:
    """Rewrite an ECMA-262 pattern into the anchored subset the converter translates into
    valid GBNF: shorthand classes and escapes become explicit character classes, `.` and
    classes exclude what a JSON string must escape, `(?:` becomes `(`, lazy quantifiers
    become greedy (the same language), an unanchored side gets `.*` (JSON Schema patterns
    search, they do not match whole strings). Raises Unsupported otherwise."""
    body = pattern
    anchored_start = body.startswith("^")
    body = body[1:] if anchored_start else body
    anchored_end = body.endswith("$") and not _escaped_at(body, len(body) - 1)
    body = body[:-1] if anchored_end else body
    out: list[str] = []
    i = 0
    while i < len(body):
        c = body[i]
        if c == "\\":
            piece, i = _escape(body, i, in_class=False)
            out.append(_class_text(piece, negated=False))
        elif c == "[":
            ranges, negated, i = _char_class(body, i)
            out.append(_class_text(ranges, negated))
        elif c == "(":
            if body.startswith("(?:", i):
                out.append("(")
                i += 3
                continue
            if body.startswith("(?", i):
                raise Unsupported(f"keyword 'pattern': lookaround or group flag at {i + 1} of /{pattern}/")
            out.append("(")
            i += 1
        elif c == ".":
            out.append(_class_text([], negated=True))
            i += 1
        elif c in "^$":
            raise Unsupported(f"keyword 'pattern': anchor '{c}' inside /{pattern}/")
        elif c in "*+?}" and body.startswith("?", i + 1):
            out.append(c)  # lazy: same language as greedy
            i += 2
        elif ord(c) < 0x20 or c in '"':
            raise Unsupported(f"keyword 'pattern': /{pattern}/ matches a character JSON must escape ({c!r})")
        else:
            out.append(c)
            i += 1
    text = "".join(out)
    anything = _class_text([], negated=True) + "*"
    if not anchored_start:
        text = f"{anything}({text})" if anchored_end else f"{anything}({text}){anything}"
    elif not anchored_end:
        text = f"({text}){anything}"
    return f"^{text}$"


def _escaped_at(text: str, index: int) -> bool:
    """Whether text[index] is preceded by an odd number of backslashes."""
    n = 0
    while index - n - 1 >= 0 and text[index - n - 1] == "\\":
        n += 1
    return n % 2 == 1


def _escape(body: str, i: int, in_class: bool) -> tuple[list[tuple[int, int]], int]:
    """The code-point ranges of the escape at body[i] ('\\'), and the index after it."""
    if i + 1 >= len(body):
        raise Unsupported(f"keyword 'pattern': trailing backslash in /{body}/")
    e = body[i + 1]
    if e in _SHORTHAND:
        ranges = _SHORTHAND[e]
        return (ranges if in_class or e != "s" else [(0x20, 0x20)]), i + 2
    if e in "DWS":
        if in_class:
            raise Unsupported(f"keyword 'pattern': '\\{e}' inside a character class of /{body}/")
        return _complement(_SHORTHAND[e.lower()]), i + 2
    if e in "xu":
        width = 2 if e == "x" else 4
        digits = body[i + 2 : i + 2 + width]
        try:
            point = int(digits, 16) if len(digits) == width else -1
        except ValueError:
            point = -1
        if point < 0:
            raise Unsupported(f"keyword 'pattern': malformed '\\{e}' escape in /{body}/")
        return [(point, point)], i + 2 + width
    controls = {"t": 9, "n": 10, "v": 11, "f": 12, "r": 13}
    if e in controls:
        return [(controls[e], controls[e])], i + 2
    if e.isalnum():  # \b, \B, \1 (backreference), \A, \Z, \p{…}: not regular or unknown
        raise Unsupported(f"keyword 'pattern': '\\{e}' in /{body}/ cannot be enforced")
    return [(ord(e), ord(e))], i + 2


def _char_class(body: str, i: int) -> tuple[list[tuple[int, int]], bool, int]:
    """Parse `[...]` at body[i]: its ranges, whether negated, and the index after it."""
    j = i + 1
    negated = body.startswith("^", j)
    j += negated
    ranges: list[tuple[int, int]] = []
    first = True
    while j < len(body) and (body[j] != "]" or first):
        first = False
        if body[j] == "\\":
            item, j = _escape(body, j, in_class=True)
        else:
            item, j = [(ord(body[j]), ord(body[j]))], j + 1
        is_range = len(item) == 1 and item[0][0] == item[0][1] and body.startswith("-", j)
        if is_range and j + 1 < len(body) and body[j + 1] != "]":
            if body[j + 1] == "\\":
                end, j = _escape(body, j + 1, in_class=True)
            else:
                end, j = [(ord(body[j + 1]), ord(body[j + 1]))], j + 2
            if len(end) != 1 or end[0][0] != end[0][1] or end[0][0] < item[0][0]:
                raise Unsupported(f"keyword 'pattern': bad range in a character class of /{body}/")
            item = [(item[0][0], end[0][0])]
        ranges += item
    if j >= len(body):
        raise Unsupported(f"keyword 'pattern': unclosed '[' in /{body}/")
    return ranges, negated, j + 1


def _complement(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out, start = [], 0
    for lo, hi in sorted(ranges):
        if lo > start:
            out.append((start, lo - 1))
        start = max(start, hi + 1)
    return out + [(start, 0x10FFFF)] if start <= 0x10FFFF else out


def _subtract(ranges: list[tuple[int, int]], removed: list[tuple[int, int]]) -> list[tuple[int, int]]:
    keep = _complement(removed)
    return [(max(a, c), min(b, d)) for a, b in ranges for c, d in keep if max(a, c) <= min(b, d)]


def _class_text(ranges: list[tuple[int, int]], negated: bool) -> str:
    """A GBNF character class (hex escapes throughout, so llama.cpp's parser accepts every
    character) that admits no character a JSON string must escape."""
    if negated:
        ranges, negated = _subtract(_complement(ranges), _JSON_UNSAFE), False
    else:
        ranges = _subtract(ranges, _JSON_UNSAFE)
    if not ranges:
        raise Unsupported("keyword 'pattern': a character class admits only characters JSON must escape")
    return "[" + "".join(_hex(a) if a == b else f"{_hex(a)}-{_hex(b)}" for a, b in sorted(ranges)) + "]"


def _hex(point: int) -> str:
    if point <= 0xFF:
        return f"\\x{point:02X}"
    return f"\\u{point:04X}" if point <= 0xFFFF else f"\\U{point:08X}"
