"""ECMA-262 patterns → the anchored, JSON-safe regex subset llama.cpp's schema converter
turns into valid GBNF (`_gbnf`); pure Python, so the schema-subset pass (`_schema_subset`)
can ask whether a pattern is enforceable without loading llama.cpp.

A translated pattern admits a subset of the original's language (`\\s` → a space, classes lose
the characters a JSON string would have to escape): what the grammar admits always matches.
"""

from __future__ import annotations

# Characters a JSON string may not hold unescaped; generated strings never contain them.
_JSON_UNSAFE: list[tuple[int, int]] = [(0x00, 0x1F), (0x22, 0x22), (0x5C, 0x5C)]
_SHORTHAND: dict[str, list[tuple[int, int]]] = {
    "d": [(0x30, 0x39)],
    "w": [(0x30, 0x39), (0x41, 0x5A), (0x5F, 0x5F), (0x61, 0x7A)],
    "s": [(0x09, 0x0D), (0x20, 0x20)],
}


class Unsupported(Exception):
    """A schema feature that cannot be enforced; the message names it."""


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
