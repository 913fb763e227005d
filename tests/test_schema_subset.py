"""Constrained decoding relaxes what a grammar cannot enforce instead of stopping (issue #32
item 13): the enforced part of a schema, the relaxed keywords named per place, number bounds
as digit rules, and llama.cpp's own grammar engine checking both.

`tests/data/extraction_schemas.json` is a held-out set of 32 realistic extraction schemas
(invoices, receipts, bookings, listings, claims, …; written for this test, not taken from the
bundled task), each with the keywords a grammar must relax, by hand: before the fix 31 of them
ended the run on their first unenforceable keyword (`'minimum' … is enforced on integers only`).
"""

from __future__ import annotations

import ctypes
import json
import math
import random
import re
from pathlib import Path

import jsonschema
import pytest

from llmassay.backends._gbnf import compile_schema, number_range, schema_to_gbnf
from llmassay.backends._schema_subset import NumberBounds, enforceable
from llmassay.types import GenerateRequest, LlmassayError

WALKS = 5  # per schema; 40 passed too (~30 s)
HELD_OUT = json.loads((Path(__file__).parent / "data" / "extraction_schemas.json").read_text())


def _named(relaxed) -> list[str]:
    return sorted(f"{r.keyword} at {r.path or 'the root'}" for r in relaxed)


def test_the_held_out_set_is_realistic_and_large_enough():
    assert len(HELD_OUT) >= 30 and len({c["name"] for c in HELD_OUT}) == len(HELD_OUT)
    text = json.dumps([c["schema"] for c in HELD_OUT])
    for keyword in ('"minimum": 0', "exclusiveMinimum", "multipleOf", "pattern", "format", "minLength", "$ref",
                    "anyOf", "oneOf", "allOf", '["number", "null"]'):
        assert keyword in text, keyword


@pytest.mark.parametrize("case", HELD_OUT, ids=[c["name"] for c in HELD_OUT])
def test_every_held_out_schema_compiles_and_lists_what_it_relaxes(case):
    compiled = compile_schema(case["schema"])  # no exception: nothing stops the run
    assert _named(compiled.relaxed) == sorted(case["relaxed"])
    assert "root ::=" in compiled.gbnf
    jsonschema.validators.validator_for(compiled.schema).check_schema(compiled.schema)
    for r in compiled.relaxed:  # one line each, naming the keyword and the place
        line = str(r)
        assert "\n" not in line and line.startswith(f"keyword '{r.keyword}' at ")
    if not compiled.relaxed:
        assert schema_to_gbnf(GenerateRequest.schema_string(case["schema"])) == compiled.gbnf
    else:  # the backend alone still refuses to pretend: the probe sends compiled.schema
        with pytest.raises(LlmassayError, match=re.escape(f"keyword '{compiled.relaxed[0].keyword}'")):
            schema_to_gbnf(GenerateRequest.schema_string(case["schema"]))
        assert not compile_schema(compiled.schema).relaxed


# -- number bounds as digit rules -------------------------------------------------------
def _gbnf_regex(alternation: str) -> re.Pattern[str]:
    """A rule body of literals, classes, groups and repetitions as a Python regex."""
    return re.compile(re.sub(r'"([^"]*)"', lambda m: re.escape(m.group(1)), alternation).replace(" ", ""))


_WHOLE = [str(n) for n in range(-130, 131)] + ["1000000", "-1000000", "1000001", "00", "007", "-0"]
_FRACTIONS = ["", ".0", ".00", ".5", ".05", ".25", ".999", ".000000001", ".0000000001", ".999999999",
              ".9999999999999999999", ".000000000000000000001", ".1e5", "e3", "."]
_TEXTS = [w + f for w in _WHOLE for f in _FRACTIONS]


@pytest.mark.parametrize(
    "bounds, inside, outside",
    [
        (NumberBounds(0, False, None, False), ["0", "12.99", "0.5", "100000"], ["-12.5", "-0.5", "-0", "1e5"]),
        (NumberBounds(0, True, None, False), ["0.5", "0.000000001", "3"], ["0", "0.0", "-1"]),
        (NumberBounds(0, False, 100, False), ["0", "99.99", "100", "100.0"], ["100.5", "-1", "101"]),
        (NumberBounds(-90, False, 90, False), ["-90", "-89.5", "0", "45.25", "90"], ["-90.5", "90.01", "-91"]),
        (NumberBounds(0, True, 1, True), ["0.5", "0.05", "0.999999999"], ["0", "1", "1.0", "0.0"]),
        (NumberBounds(None, False, 0, True), ["-0.5", "-12"], ["0", "0.5"]),
        (NumberBounds(0, False, 5, True), ["4.9", "4.999999999", "0"], ["5", "5.0", "4.9999999999999999999"]),
        (NumberBounds(1, True, 3, False), ["1.5", "2", "3", "3.00"], ["1", "1.0", "3.5", "0.5"]),
        (NumberBounds(-5, True, -2, True), ["-4.5", "-2.5", "-3"], ["-5", "-2", "-1.5", "-5.5"]),
        (NumberBounds(-1000000, False, 1000000, False), ["-1000000", "999999.5", "1000000"], ["1000000.5"]),
    ],
)
def test_number_bounds_admit_only_numbers_in_range(bounds, inside, outside):
    """Planted cases both ways, then every one of ~4,000 decimals: whatever the rule admits
    is, after JSON parsing (float rounding included), within the bounds."""
    pattern = _gbnf_regex(number_range(bounds))
    for text in inside:
        assert pattern.fullmatch(text), text
    for text in outside:
        assert not pattern.fullmatch(text), text

    def within(value: float) -> bool:
        lo_ok = bounds.lo is None or (value > bounds.lo if bounds.lo_exclusive else value >= bounds.lo)
        hi_ok = bounds.hi is None or (value < bounds.hi if bounds.hi_exclusive else value <= bounds.hi)
        return lo_ok and hi_ok

    admitted = [t for t in _TEXTS if pattern.fullmatch(t)]
    assert admitted
    for text in admitted:
        assert within(json.loads(text)), text


def test_a_whole_number_bound_on_a_number_is_enforced_and_a_fractional_one_relaxed():
    schema = {"type": "object", "properties": {"price": {"type": "number", "minimum": 0, "maximum": 99.99}},
              "required": ["price"]}
    subset = enforceable(schema)
    assert _named(subset.relaxed) == ["maximum at price"]
    assert subset.schema["properties"]["price"] == {"type": "number", "minimum": 0}
    assert "the bound 99.99 is not a whole number" in subset.relaxed[0].reason


# -- equivalent rewrites: what the converter used to drop silently is enforced -----------
@pytest.mark.parametrize(
    "schema, enforced",
    [
        # a list type: one branch per type, with the keywords that apply to it
        ({"type": ["string", "null"], "maxLength": 3, "minimum": 1},
         {"anyOf": [{"type": "string", "maxLength": 3}, {"type": "null"}]}),
        # enum values that break a keyword beside them are never written
        ({"type": "string", "enum": ["a", "bb", None], "maxLength": 1}, {"enum": ["a"]}),
        # keywords beside anyOf hold in every branch
        ({"type": "object", "properties": {"a": {"type": "string"}}, "anyOf": [{"required": ["a"]}, {"required": []}]},
         {"anyOf": [{"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]},
                    {"type": "object", "properties": {"a": {"type": "string"}}, "required": []}]}),
        # allOf parts merge into one object
        ({"allOf": [{"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]},
                    {"properties": {"b": {"type": "boolean"}}}]},
         {"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "boolean"}}, "required": ["a"]}),
        # a required key 'properties' leaves out is still written
        ({"type": "object", "properties": {}, "required": ["id"]},
         {"type": "object", "properties": {"id": {"anyOf": [{"type": t} for t in
                                                       ("object", "array", "string", "number", "boolean", "null")]}},
          "required": ["id"]}),
        # a free-form object stays free-form
        ({"type": "object"}, {"type": "object"}),
    ],
)
def test_equivalent_rewrites_keep_keywords_enforced(schema, enforced):
    subset = enforceable(schema)
    assert subset.relaxed == () and subset.schema == enforced
    compile_schema(schema)


def test_keywords_beside_a_reference_are_enforced_with_it():
    schema = {"$defs": {"price": {"type": "number"}}, "type": "object",
              "properties": {"p": {"$ref": "#/$defs/price", "minimum": 0}, "q": {"$ref": "#/$defs/price"}}}
    subset = enforceable(schema)
    assert subset.relaxed == ()
    assert subset.schema["properties"] == {"p": {"type": "number", "minimum": 0}, "q": {"$ref": "#/$defs/price"}}
    remote = enforceable({"type": "object", "properties": {"p": {"$ref": "https://example.com/s.json"}}})
    assert _named(remote.relaxed) == ["$ref at p"]


# -- llama.cpp's own grammar engine -------------------------------------------------------
class _Vocab:
    """llama.cpp's grammar sampler over a model's vocabulary (loaded vocab-only: no
    weights), fed one character token at a time: whether the grammar accepts a text."""

    def __init__(self, path: Path) -> None:
        import llama_cpp

        self.lib = llama_cpp
        params = llama_cpp.llama_model_default_params()
        params.vocab_only = True
        self.model = llama_cpp.llama_model_load_from_file(str(path).encode(), params)
        self.vocab = llama_cpp.llama_model_get_vocab(self.model)
        self.eos = llama_cpp.llama_vocab_eos(self.vocab)
        self.tokens = {c: self._token(c) for c in [*map(chr, range(0x20, 0x7F)), "\n", "\t"]}

    def _token(self, char: str) -> int:
        buf = (self.lib.llama_token * 4)()
        assert self.lib.llama_tokenize(self.vocab, char.encode(), 1, buf, 4, False, False) == 1, char
        return int(buf[0])

    def sampler(self, gbnf: str):
        smpl = self.lib.llama_sampler_init_grammar(self.vocab, gbnf.encode(), b"root")
        assert smpl, "llama.cpp rejected the grammar"
        return smpl

    def allowed(self, smpl, tokens: list[int]) -> list[int]:
        data = (self.lib.llama_token_data * len(tokens))(*(self.lib.llama_token_data(t, 0.0, 0.0) for t in tokens))
        arr = self.lib.llama_token_data_array(data, len(tokens), -1, False)
        self.lib.llama_sampler_apply(smpl, ctypes.byref(arr))
        return [d.id for d in data if not math.isinf(d.logit)]

    def accepts(self, gbnf: str, text: str) -> bool:
        smpl = self.sampler(gbnf)
        try:
            for token in [self.tokens[c] for c in text]:
                if not self.allowed(smpl, [token]):
                    return False
                self.lib.llama_sampler_accept(smpl, token)
            return bool(self.allowed(smpl, [self.eos]))
        finally:
            self.lib.llama_sampler_free(smpl)

    def close(self) -> None:
        self.lib.llama_model_free(self.model)


@pytest.fixture(scope="module")
def vocab(smollm2_path):
    v = _Vocab(smollm2_path)
    yield v
    v.close()


def test_llamacpp_never_writes_a_negative_price_under_a_minimum_0(vocab):
    gbnf = compile_schema({"type": "object", "properties": {"unit_price": {"type": "number", "minimum": 0}},
                           "required": ["unit_price"], "additionalProperties": False}).gbnf
    for text in ('{"unit_price": 12.5}', '{"unit_price": 0}', '{"unit_price":3}'):
        assert vocab.accepts(gbnf, text), text
    for text in ('{"unit_price": -12.5}', '{"unit_price": -0.5}', '{"unit_price": -3}'):
        assert not vocab.accepts(gbnf, text), text


def test_llamacpp_never_writes_a_raw_newline_inside_a_string(vocab):
    """JSON escapes control characters; llama.cpp's own string rule let them through."""
    gbnf = compile_schema({"type": "object", "properties": {"note": {"type": "string"}}, "required": ["note"]}).gbnf
    assert vocab.accepts(gbnf, '{"note": "a\\nb"}')
    assert not vocab.accepts(gbnf, '{"note": "a\nb"}') and not vocab.accepts(gbnf, '{"note": "a\tb"}')


def test_llamacpp_walks_through_every_held_out_grammar_write_only_what_the_schema_allows(vocab):
    """Random walks through each grammar with llama.cpp's sampler (fixed seed): every
    finished text validates against the enforced schema, and any error against the full
    schema comes from a keyword the compiler said it relaxed."""
    rng = random.Random(13)
    closing = {vocab.tokens[c] for c in '"}],'}
    finished = 0
    for case in HELD_OUT:
        compiled = compile_schema(case["schema"])
        relaxed = {r.keyword for r in compiled.relaxed}
        for _ in range(WALKS):
            smpl = vocab.sampler(compiled.gbnf)
            text, candidates = "", [*vocab.tokens.values(), vocab.eos]
            try:
                while len(text) < 600:
                    allowed = vocab.allowed(smpl, candidates)
                    assert allowed, f"{case['name']}: the grammar is stuck after {text!r}"
                    if vocab.eos in allowed and rng.random() < 0.5:
                        break
                    pick = rng.choices(allowed, [12.0 if t in closing else 1.0 for t in allowed])[0]
                    if pick == vocab.eos:
                        break
                    vocab.lib.llama_sampler_accept(smpl, pick)
                    text += next(c for c, t in vocab.tokens.items() if t == pick)
                else:
                    continue  # too long to finish: no verdict
            finally:
                vocab.lib.llama_sampler_free(smpl)
            value = json.loads(text)
            finished += 1
            cls = jsonschema.validators.validator_for(compiled.schema)
            enforced_errors = list(cls(compiled.schema, format_checker=cls.FORMAT_CHECKER).iter_errors(value))
            assert not enforced_errors, f"{case['name']}: {text} — {enforced_errors[0].message}"
            full = jsonschema.validators.validator_for(case["schema"])
            for error in full(case["schema"], format_checker=full.FORMAT_CHECKER).iter_errors(value):
                places = [error, *(error.context or ())]  # an anyOf error: its branches' errors
                assert any(relaxed & set(map(str, e.absolute_schema_path)) for e in places), (
                    f"{case['name']}: {text} — {error.message}")
    assert finished >= 2 * len(HELD_OUT)


def test_llamacpp_parses_the_longest_repetition_the_compiler_keeps_and_one_longer_is_relaxed(vocab):
    from llmassay.backends._schema_subset import MAX_REPEAT

    for field in ({"type": "string", "maxLength": MAX_REPEAT},
                  {"type": "array", "maxItems": MAX_REPEAT, "items": {"type": "object", "properties": {"a": {"type": "string"}}}}):
        compiled = compile_schema({"type": "object", "properties": {"x": field}})
        assert compiled.relaxed == ()
        vocab.lib.llama_sampler_free(vocab.sampler(compiled.gbnf))  # parses
    longer = compile_schema({"type": "object", "properties": {"x": {"type": "string", "maxLength": MAX_REPEAT + 500}}})
    assert _named(longer.relaxed) == ["maxLength at x"]
