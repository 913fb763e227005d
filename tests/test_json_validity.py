"""Structured-output validity rules on hand-written outputs (issue #16, item 10): the
schema's `format` keyword is enforced, and every parser applies one rule for what counts
as valid JSON — an object or an array, never a bare null, number, string or boolean."""

from __future__ import annotations

import pytest

from llmassay.probes._json import PARSERS, parse_extract, parse_repair, parse_strict, schema_classes, schema_errors

CONTACT = {
    "type": "object",
    "properties": {
        "email": {"type": "string", "format": "email"},
        "born": {"type": "string", "format": "date"},
        "name": {"type": "string"},
    },
    "required": ["email"],
}


@pytest.mark.parametrize(
    "record, bad_field",
    [
        ({"email": "ann@example.com", "born": "1990-05-01"}, None),
        ({"email": "ann at example.com"}, "email"),
        ({"email": "ann@example.com", "born": "1990-13-01"}, "born"),
        ({"email": "ann@example.com", "born": "May 1st, 1990"}, "born"),
        ({"email": "ann@example.com", "born": "1990-02-30"}, "born"),
    ],
)
def test_format_is_enforced_and_classed_as_a_bad_value(record, bad_field):
    errors = schema_errors(record, CONTACT)
    if bad_field is None:
        assert errors == []
        return
    assert [(list(e.absolute_path), e.validator) for e in errors] == [([bad_field], "format")]
    assert schema_classes(errors) == ["bad_value"]


def test_format_on_a_non_string_is_not_a_format_error():
    # JSON Schema applies `format: email` to strings only; the type error is reported once.
    errors = schema_errors({"email": 5}, CONTACT)
    assert schema_classes(errors) == ["wrong_type"]


@pytest.mark.parametrize("text", ["null", "42", "-1.5", '"Ann"', "true", "  null  "])
@pytest.mark.parametrize("mode", sorted(PARSERS))
def test_a_bare_scalar_is_not_valid_json_in_any_mode(mode, text):
    parsed = PARSERS[mode](text)
    assert not parsed.ok and parsed.value is None and parsed.error


@pytest.mark.parametrize("text, value", [('{"a": 1}', {"a": 1}), ("[1, 2]", [1, 2]), (" {} ", {}), ("[]", [])])
@pytest.mark.parametrize("mode", sorted(PARSERS))
def test_an_object_or_array_is_valid_json_in_every_mode(mode, text, value):
    parsed = PARSERS[mode](text)
    assert parsed.ok and parsed.value == value


def test_the_strict_error_names_what_was_found():
    assert parse_strict("null").error == "a bare JSON null, not an object or array"
    assert parse_strict("3").error == "a bare JSON number, not an object or array"
    assert parse_strict('"x"').error == "a bare JSON string, not an object or array"
    assert parse_strict("false").error == "a bare JSON boolean, not an object or array"
    assert parse_extract("42").error == "no JSON object or array in the output"
    assert parse_repair("42").error == "json-repair found no object or array"
