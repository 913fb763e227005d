"""Reading a model's JSON answer: three parsers, schema validation, field accuracy and a
failure taxonomy. Pure functions of the text, so they are tested on hand-written outputs.

Model output is untrusted: it is only ever given to `json` and `json_repair`, never run.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from llmassay.metrics import normalise_answer

MAX_ERROR_CHARS = 200  # a validator message quotes the output; keep feedback and rows short

# The classes a failed output is sorted into (an output can show several).
TAXONOMY = (
    "empty",  # nothing but whitespace
    "no_json",  # text without any '{' or '['
    "truncated",  # the JSON value stops before it closes (length limit or stop string)
    "prose",  # text before or after the JSON value
    "code_fence",  # a ``` markdown fence
    "quotes_commas",  # single-quoted strings or trailing commas
    "other_syntax",  # any other JSON syntax error
    "missing_required",  # a required field is absent
    "wrong_type",  # a field has the wrong JSON type
    "extra_keys",  # a field the schema does not allow
    "bad_value",  # enum, pattern, range or format violated
    "other_schema",  # any other schema violation
)
_SCHEMA_CLASS = {
    "required": "missing_required",
    "type": "wrong_type",
    "additionalProperties": "extra_keys",
    "unevaluatedProperties": "extra_keys",
    "enum": "bad_value",
    "const": "bad_value",
    "pattern": "bad_value",
    "format": "bad_value",
    "minimum": "bad_value",
    "maximum": "bad_value",
    "exclusiveMinimum": "bad_value",
    "exclusiveMaximum": "bad_value",
}
_FENCE = re.compile(r"```[A-Za-z0-9_-]*")
_TRAILING_COMMA = re.compile(r",\s*[}\]]")
_SINGLE_QUOTED = re.compile(r"(?:[{\[,:]\s*'|'\s*[:,}\]])")


@dataclass(frozen=True)
class Parsed:
    """What one parser made of a text: the value, or the reason there is none."""

    ok: bool
    value: Any = None
    error: str | None = None
    span: tuple[int, int] | None = None  # where in the text the value was found


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _loads(text: str) -> Any:
    return json.loads(text, parse_constant=_no_constants)  # NaN / Infinity are not JSON


def _record(value: Any, span: tuple[int, int] | None = None, error: str | None = None) -> Parsed:
    """One rule for every parser: only an object or array is a record. A bare null,
    number or string decodes as JSON but answers no structured-output request."""
    if isinstance(value, (dict, list)):
        return Parsed(True, value, span=span)
    return Parsed(False, error=error or f"a bare JSON {_json_type(value)}, not an object or array")


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    return "string" if isinstance(value, str) else "number"


def parse_strict(text: str) -> Parsed:
    """`json.loads` on the whole output: what a naive caller does (but a bare scalar is
    not a record, as for the other parsers)."""
    try:
        return _record(_loads(text), span=(0, len(text)))
    except json.JSONDecodeError as exc:
        return Parsed(False, error=f"{exc.msg} at line {exc.lineno} column {exc.colno}")
    except (ValueError, RecursionError) as exc:
        return Parsed(False, error=_short(str(exc) or type(exc).__name__))


def parse_extract(text: str) -> Parsed:
    """The first JSON object or array that decodes, wherever it starts (after prose, inside
    a code fence). Each '{' or '[' is tried with the standard decoder in turn; a value that
    runs to the end of the text unclosed ends the search (what follows is inside it)."""
    decoder = json.JSONDecoder(parse_constant=_no_constants)
    first_error: str | None = None
    end_of_text = len(text.rstrip())
    for match in re.finditer(r"[{\[]", text):
        try:
            value, end = decoder.raw_decode(text, match.start())
        except json.JSONDecodeError as exc:
            first_error = first_error or f"{exc.msg} at line {exc.lineno} column {exc.colno}"
            if exc.pos >= end_of_text:
                break
            continue
        except (ValueError, RecursionError):
            continue
        return _record(value, span=(match.start(), end))
    return Parsed(False, error=first_error or "no JSON object or array in the output")


def parse_repair(text: str) -> Parsed:
    """json-repair's best reading of the text (fixes quotes, commas, unclosed brackets,
    strips fences and prose); only an object or array counts as parsed."""
    import json_repair

    try:
        value = json_repair.repair_json(text, return_objects=True)
    except (ValueError, RecursionError, TypeError) as exc:
        return Parsed(False, error=_short(f"json-repair failed: {exc}"))
    return _record(value, error="json-repair found no object or array")


PARSERS = {"strict": parse_strict, "extract": parse_extract, "repair": parse_repair}


def schema_errors(value: Any, schema: dict[str, Any]) -> list[Any]:
    """jsonschema's errors for `value`, in a stable order (by path, then message).
    `format` (email, date, …) is checked: jsonschema only annotates it by default."""
    import jsonschema

    cls = jsonschema.validators.validator_for(schema)
    validator = cls(schema, format_checker=cls.FORMAT_CHECKER)
    return sorted(validator.iter_errors(value), key=lambda e: (list(map(str, e.absolute_path)), e.message))


def describe(errors: list[Any]) -> list[str]:
    """One short line per schema error, naming the field."""
    out = []
    for e in errors:
        where = "/".join(map(str, e.absolute_path)) or "(root)"
        out.append(_short(f"{where}: {e.message}"))
    return out


def schema_classes(errors: list[Any]) -> list[str]:
    return sorted({_SCHEMA_CLASS.get(str(e.validator), "other_schema") for e in errors})


def text_classes(text: str, finish_reason: str) -> list[str]:
    """What the raw output looks like, independent of any schema."""
    if not text.strip():
        return ["empty"]
    classes = set()
    if "```" in text:
        classes.add("code_fence")
    starts = [m.start() for m in re.finditer(r"[{\[]", text)]
    if not starts:
        classes.add("no_json")
        return sorted(classes)
    found = parse_extract(text)
    if found.ok and found.span is not None and found.span[0] == starts[0]:
        start, end = found.span
    else:  # the first value is broken: it runs from its first bracket to the end of the text
        start, end = starts[0], len(text)
        classes.add(_syntax_class(_FENCE.sub("", text[start:]).rstrip(), finish_reason))
    outside = _FENCE.sub("", text[:start] + text[end:])
    if outside.strip():
        classes.add("prose")
    return sorted(classes)


def _syntax_class(candidate: str, finish_reason: str) -> str:
    try:
        _loads(candidate)
        return "other_syntax"  # decodes once fences are gone: counted as fence/prose elsewhere
    except json.JSONDecodeError as exc:
        at_end = exc.pos >= len(candidate)
    except (ValueError, RecursionError):
        return "other_syntax"
    if at_end:  # everything before the end decoded: the value was cut off
        return "truncated"
    if _TRAILING_COMMA.search(candidate) or _SINGLE_QUOTED.search(candidate):
        return "quotes_commas"
    return "truncated" if finish_reason == "length" else "other_syntax"


def _scalar(value: Any) -> str | None:
    """Normalised text of a leaf: case, spaces, quotes and a final stop do not count;
    35, 35.0 and "35" are the same number, true and "true" the same value (types are
    schema validity's business, values are field accuracy's)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(float(value))
    if isinstance(value, str):
        norm = normalise_answer(value)
        try:
            return repr(float(norm)) if norm and not norm.isalpha() else norm
        except ValueError:
            return norm
    if value is None:
        return None
    return json.dumps(value, sort_keys=True)


def leaves(value: Any, path: tuple[Any, ...] = ()) -> dict[tuple[Any, ...], Any]:
    """Every scalar in a JSON value, keyed by its path of keys and list indices."""
    if isinstance(value, dict):
        out: dict[tuple[Any, ...], Any] = {}
        for k, v in value.items():
            out.update(leaves(v, path + (k,)))
        return out
    if isinstance(value, list):
        out = {}
        for i, v in enumerate(value):
            out.update(leaves(v, path + (i,)))
        return out
    return {path: value}


def field_accuracy(predicted: Any, gold: Any) -> float:
    """Share of the gold record's leaf values that the prediction has at the same path,
    equal after normalisation. Fields the gold record leaves out are not scored."""
    expected = leaves(gold)
    if not expected:
        return 1.0
    got = leaves(predicted)
    hits = sum(1 for p, v in expected.items() if p in got and _scalar(got[p]) == _scalar(v))
    return hits / len(expected)


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MAX_ERROR_CHARS else text[: MAX_ERROR_CHARS - 1] + "…"
