"""`schema_valid` checks `format` (issue #38): jsonschema checks a format only when that
format's optional package is installed, so without `jsonschema[format-nongpl]` a bad
date-time, URI or hostname passes as valid. Each value below is invalid for its format and
must fail through the project's own validator (probes/_json.schema_errors, which the
structured probe's `schema_valid` uses, and the schema-subset check)."""

from __future__ import annotations

import pytest

from llmassay.backends._schema_subset import _satisfies
from llmassay.probes._json import schema_errors

CASES = {  # format: (valid, invalid)
    "date-time": ("2024-02-29T12:30:00Z", "2024-02-30 noon"),
    "uri": ("https://example.org/a?b=c", "not a uri"),
    "hostname": ("example.org", "-bad-.example..org"),
    "email": ("ann@example.org", "ann.example.org"),
}


@pytest.mark.parametrize("fmt", sorted(CASES))
def test_a_value_invalid_for_its_format_is_not_schema_valid(fmt):
    good, bad = CASES[fmt]
    schema = {"type": "object", "properties": {"x": {"type": "string", "format": fmt}}, "required": ["x"]}
    assert schema_errors({"x": good}, schema) == []
    errors = schema_errors({"x": bad}, schema)
    assert [(list(e.absolute_path), e.validator) for e in errors] == [(["x"], "format")], (
        f"format {fmt!r} was not checked: is jsonschema[format-nongpl] installed?")
    assert not _satisfies({"x": bad}, schema, schema) and _satisfies({"x": good}, schema, schema)


def test_every_format_the_nongpl_extra_promises_has_a_checker():
    import jsonschema

    checkers = jsonschema.Draft202012Validator.FORMAT_CHECKER.checkers
    missing = [f for f in ("date-time", "uri", "uri-reference", "hostname", "idn-hostname", "email", "iri",
                           "json-pointer", "uri-template", "duration", "time") if f not in checkers]
    assert not missing, f"no checker for {missing}: pip install 'jsonschema[format-nongpl]'"
