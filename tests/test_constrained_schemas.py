"""Constrained decoding on realistic extraction schemas: every keyword either constrains the
output so that it validates, or (called directly, not through the structured probe, which
relaxes it: tests/test_schema_subset.py) ends with a one-line error that names it; never a crash.

The model runs in a child process: before the fix a rejected grammar was a segmentation
fault, which must fail a test, not end pytest."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import jsonschema
import pytest

from llmassay.backends._gbnf import integer_range, safe_pattern, schema_to_gbnf
from llmassay.types import GenerateRequest, LlmassayError

_NAME = {"type": "string", "minLength": 1, "maxLength": 12}
# Bounded everywhere so the tiny model finishes inside max_tokens; together the keywords of
# issue #16 item 13: pattern (\d, \w, \., {m,n}; unanchored ones in the unit tests), format, enum, const,
# minimum/maximum, minLength/maxLength, minItems/maxItems, nested arrays of objects,
# $defs/$ref, anyOf, optional fields, additionalProperties false.
SUITE: dict[str, dict] = {
    "date_pattern": {
        "type": "object",
        "properties": {"born": {"type": "string", "pattern": r"^\d{4}-\d{2}-\d{2}$"}},
        "required": ["born"],
        "additionalProperties": False,
    },
    "escapes": {
        "type": "object",
        "properties": {
            "file": {"type": "string", "pattern": r"^\w{1,8}\.(txt|csv)$"},
            "code": {"type": "string", "pattern": r"^[A-Z]{2}-\d{3}$"},
        },
        "required": ["file", "code"],
        "additionalProperties": False,
    },
    "formats": {
        "type": "object",
        "properties": {"day": {"type": "string", "format": "date"}, "ip": {"type": "string", "format": "ipv4"}},
        "required": ["day", "ip"],
        "additionalProperties": False,
    },
    "enum_const_bounds": {
        "type": "object",
        "properties": {
            "unit": {"enum": ["kg", "lb"]},
            "kind": {"const": "weight"},
            "value": {"type": "integer", "minimum": 1, "maximum": 250},
            "delta": {"type": "integer", "exclusiveMinimum": -10, "exclusiveMaximum": 10},
        },
        "required": ["unit", "kind", "value", "delta"],
        "additionalProperties": False,
    },
    "nested_refs": {
        "$defs": {
            "person": {
                "type": "object",
                "properties": {"name": _NAME, "age": {"type": "integer", "minimum": 0, "maximum": 120}},
                "required": ["name"],
                "additionalProperties": False,
            }
        },
        "type": "object",
        "properties": {
            "people": {"type": "array", "items": {"$ref": "#/$defs/person"}, "minItems": 1, "maxItems": 2},
            "tags": {"type": "array", "items": {"enum": ["a", "b", "c"]}, "minItems": 2, "maxItems": 3},
        },
        "required": ["people", "tags"],
        "additionalProperties": False,
    },
    "any_of_optional": {
        "type": "object",
        "properties": {
            "id": {"anyOf": [{"type": "integer", "minimum": 0, "maximum": 999}, {"type": "string", "pattern": "^[a-f]{4}$"}]},
            "note": {"type": "string", "maxLength": 10},
            "ok": {"type": "boolean"},
        },
        "required": ["id"],
        "additionalProperties": False,
    },
}
UNSUPPORTED: dict[str, tuple[dict, str]] = {
    "multipleOf": ({"type": "integer", "multipleOf": 5}, "'multipleOf'"),
    "number bounds": ({"type": "number", "minimum": 0.5}, "'minimum'"),
    "uniqueItems": ({"type": "array", "items": {"type": "integer"}, "uniqueItems": True}, "'uniqueItems'"),
    "lookahead": ({"type": "string", "pattern": "^(?=a)a+$"}, "lookaround"),
    "backreference": ({"type": "string", "pattern": r"^(a)\1$"}, r"'\1'"),
    "format uri": ({"type": "string", "format": "uri"}, "keyword 'format' at 'x': 'uri' has no grammar"),
    "empty range": ({"type": "integer", "minimum": 5, "maximum": 4}, "keyword 'minimum' at 'x': no integer lies between"),
}


def _gbnf_regex(alternation: str) -> re.Pattern[str]:
    """The GBNF produced by integer_range as a Python regex (literals, classes, groups)."""
    return re.compile(re.sub(r'"([^"]*)"', lambda m: re.escape(m.group(1)), alternation).replace(" ", ""))


@pytest.mark.parametrize("lo, hi", [(0, 120), (1, 250), (-9, 9), (-250, -17), (18, None), (None, 5), (-5, None), (100, 100), (7, 1003)])
def test_integer_range_admits_exactly_the_range(lo, hi):
    pattern = _gbnf_regex(integer_range(lo, hi))
    admitted = {n for n in range(-1500, 1501) if pattern.fullmatch(str(n))}
    expected = {n for n in range(-1500, 1501) if (lo is None or n >= lo) and (hi is None or n <= hi)}
    assert admitted == expected
    assert not pattern.fullmatch("007") and not pattern.fullmatch("-0")


@pytest.mark.parametrize(
    "pattern, inside, outside",
    [
        (r"^\d{4}-\d{2}$", ["2024-01"], ["2024-1", "abcd-01"]),
        (r"^\w+\.txt$", ["a_1.txt"], ["a-1.txt", "a.txtx", "abtxt"]),
        (r"[A-Z]{2}\d", ["xxAB1yy", "AB1"], ["ab1", "A1"]),
        (r"^a(?:b|c)*?$", ["abcb", "a"], ["ad"]),
        (r"^[^0-9]+$", ["abc"], ["a1", 'a"b', "a\\b"]),
        (r"^\s\S$", [" x"], ["\tx", "  "]),
    ],
)
def test_safe_pattern_keeps_a_json_safe_subset_of_the_language(pattern, inside, outside):
    translated = re.compile(safe_pattern(pattern))  # GBNF's \xHH classes read the same in Python
    for text in inside:
        assert translated.fullmatch(text), text
    for text in outside:
        assert not translated.fullmatch(text), text


@pytest.mark.parametrize("name", sorted(UNSUPPORTED))
def test_unenforceable_keywords_are_one_line_errors(name):
    schema, fragment = UNSUPPORTED[name]
    with pytest.raises(LlmassayError) as err:
        schema_to_gbnf(json.dumps({"title": f"item-{name}", "type": "object", "properties": {"x": schema}}))
    message = str(err.value)
    assert "\n" not in message and fragment in message and f"item-{name}" in message


_CHILD = r"""
import json, sys
import jsonschema
from llmassay.backends.llamacpp import LlamaCppBackend
from llmassay.types import GenerateRequest, LlmassayError
backend = LlamaCppBackend("smollm2-135m")
cases = json.loads(sys.stdin.read())
for name, schema in cases["schemas"].items():
    req = GenerateRequest(
        messages=(("user", "Extract the record as JSON: " + cases["text"]),),
        max_tokens=cases["max_tokens"],
        json_schema=GenerateRequest.schema_string(schema),
    )
    try:
        g = backend.generate([req])[0]
        row = {"text": g.text, "finish": g.finish_reason}
    except LlmassayError as exc:
        row = {"error": str(exc)}
    print(json.dumps({"name": name, **row}), flush=True)
for name, grammar in cases["grammars"].items():
    try:
        backend.generate([GenerateRequest(prompt="x", max_tokens=4, grammar=grammar)])
        print(json.dumps({"name": name, "text": "accepted"}), flush=True)
    except LlmassayError as exc:
        print(json.dumps({"name": name, "error": str(exc)}), flush=True)
backend.llm.close()
"""

TEXT = (
    "Ann Lee (age 34, born 1990-04-02) weighs 61 kg, up 3; file notes.txt, code AB-123, "
    "day 2024-05-06, host 10.0.0.7, tags a and b, id 42, ok."
)


def _run_child(payload: dict) -> dict[str, dict]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD], input=json.dumps(payload), capture_output=True, text=True, env=env, timeout=900
    )
    assert proc.returncode == 0, f"child died (rc {proc.returncode}): {proc.stderr[-600:]}"
    return {row["name"]: row for row in map(json.loads, proc.stdout.splitlines())}


@pytest.mark.slow
def test_llamacpp_constrained_outputs_validate_or_fail_in_one_line():
    bad_grammars = {"regex escape": r'root ::= "a" \d', "undefined rule": "root ::= missing", "escape in literal": r'root ::= "\d"'}
    schemas = {**SUITE, "unsupported": {"type": "object", "properties": {"n": {"type": "integer", "multipleOf": 3}}}}
    rows = _run_child({"schemas": schemas, "grammars": bad_grammars, "text": TEXT, "max_tokens": 72})
    for name, schema in SUITE.items():
        row = rows[name]
        assert "error" not in row, f"{name}: {row}"
        assert row["finish"] == "stop", f"{name} did not finish: {row['text']!r}"
        jsonschema.validate(json.loads(row["text"]), schema)  # raises on any violation
    assert "'multipleOf'" in rows["unsupported"]["error"]
    for name in bad_grammars:
        message = rows[name]["error"]
        assert message.startswith("llamacpp: grammar rejected by llama.cpp") and "\n" not in message, message


@pytest.mark.slow
@pytest.mark.hf
def test_hf_constrained_outputs_validate_or_fail_in_one_line(smollm2_path):
    """hf/ compiles schemas with xgrammar: the same suite, in one batched call."""
    pytest.importorskip("xgrammar")
    from llmassay.backends.hf import HFBackend

    hf = HFBackend(str(smollm2_path.parent), gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf", batch_size=8)
    names = sorted(SUITE)
    reqs = [
        GenerateRequest(
            messages=(("user", "Extract the record as JSON: " + TEXT),),
            max_tokens=72,
            json_schema=GenerateRequest.schema_string(SUITE[n]),
        )
        for n in names
    ]
    for name, g in zip(names, hf.generate(reqs)):
        assert g.finish_reason == "stop", f"{name} did not finish: {g.text!r}"
        jsonschema.validate(json.loads(g.text), SUITE[name])
    for name, (schema, _) in sorted(UNSUPPORTED.items()):
        req = GenerateRequest(prompt="Answer as JSON:", max_tokens=24, json_schema=GenerateRequest.schema_string(schema))
        try:
            g = hf.generate([req])[0]
        except LlmassayError as exc:
            assert "\n" not in str(exc), name
            continue
        if g.finish_reason == "stop":
            jsonschema.validate(json.loads(g.text), schema)
